"""Receptive-field algebra and layer lookup, against hand-computed values."""

import numpy as np
import pytest

from interpkit import InputError, LayerInfo, layer_table, receptive_fields
from interpkit.probe import resolve_layer


def basset_layers(padding=(0, 0, 0)):
    """Kipoi Basset's convolutional stack (conv19-pool3-conv11-pool4-conv7-pool4), with BN/ReLU between."""
    p1, p2, p3 = padding
    return [
        LayerInfo("conv1", "conv", kernel_size=19, padding=p1, channels=300),
        LayerInfo("bn1", "norm", channels=300),
        LayerInfo("relu1", "activation", channels=300),
        LayerInfo("pool1", "maxpool", kernel_size=3, stride=3, channels=300),
        LayerInfo("conv2", "conv", kernel_size=11, padding=p2, channels=200),
        LayerInfo("relu2", "activation", channels=200),
        LayerInfo("pool2", "maxpool", kernel_size=4, stride=4, channels=200),
        LayerInfo("conv3", "conv", kernel_size=7, padding=p3, channels=200),
        LayerInfo("relu3", "activation", channels=200),
        LayerInfo("pool3", "maxpool", kernel_size=4, stride=4, channels=200),
        LayerInfo("flatten", "flatten"),
        LayerInfo("fc1", "dense", channels=1000),
    ]


def test_basset_receptive_fields_hand_computed():
    # Hand computation: r' = r + (k-1) j, j' = j s.
    # conv19: 1+18*1=19 (j1); pool3: 19+2*1=21 (j3); conv11: 21+10*3=51 (j3);
    # pool4: 51+3*3=60 (j12); conv7: 60+6*12=132 (j12); pool4: 132+3*12=168 (j48).
    geoms = {info.name: g for info, g in zip(basset_layers(), receptive_fields(basset_layers()))}
    expected = {"conv1": (19, 1), "relu1": (19, 1), "pool1": (21, 3), "conv2": (51, 3), "pool2": (60, 12),
                "conv3": (132, 12), "pool3": (168, 48)}
    for name, (rf, jump) in expected.items():
        assert (geoms[name].receptive_field, geoms[name].jump, geoms[name].start) == (rf, jump, 0), name
    assert geoms["flatten"].is_global and geoms["fc1"].is_global


def test_basset_output_positions_match_kipoi_shapes():
    # Kipoi Basset on 600 bp: conv3 output has 40 positions, pool3 has 10 (peers.md 4.2).
    geoms = dict(zip([i.name for i in basset_layers()], receptive_fields(basset_layers())))
    conv3, pool3 = geoms["conv3"], geoms["pool3"]
    assert conv3.window(39)[1] == 600  # the last of 40 conv3 positions ends at the sequence end
    assert pool3.window(9)[1] <= 600 < pool3.window(10)[1]


def test_padding_moves_start_into_padding():
    # 'same' padding (k-1)//2 per conv: start = -9, then -9 - 5*3 = -24, then -24 - 3*12 = -60.
    geoms = dict(zip([i.name for i in basset_layers()], receptive_fields(basset_layers((9, 5, 3)))))
    assert geoms["conv1"].start == -9
    assert geoms["conv2"].start == -24
    assert geoms["conv3"].start == -60
    assert geoms["conv3"].receptive_field == 132  # padding does not change the receptive field


def test_dilation_and_residual_merge():
    # ResidualBind-like: conv11, then a dilated branch (k3, d2 and d4) added back to its input.
    layers = [
        LayerInfo("conv", "conv", kernel_size=11),
        LayerInfo("res1", "conv", kernel_size=3, dilation=2, padding=2),
        LayerInfo("res2", "conv", kernel_size=3, dilation=4, padding=4),
        LayerInfo("add", "add", inputs=("conv", "res2")),
    ]
    g = dict(zip([i.name for i in layers], receptive_fields(layers)))
    # res1: k_eff 5 -> 11 + 4 = 15, start -2; res2: k_eff 9 -> 15 + 8 = 23, start -6.
    assert (g["res1"].receptive_field, g["res1"].start) == (15, -2)
    assert (g["res2"].receptive_field, g["res2"].start) == (23, -6)
    # The sum sees the union of [0, 11) and [-6, 17): [-6, 17), 23 bp.
    assert (g["add"].receptive_field, g["add"].start, g["add"].jump) == (23, -6, 1)


def test_window_of_strided_layer():
    layers = [LayerInfo("c", "conv", kernel_size=5), LayerInfo("p", "maxpool", kernel_size=2, stride=2)]
    pool = receptive_fields(layers)[1]
    assert pool.window(0) == (0, 6) and pool.window(3) == (6, 12)


def test_layer_table_columns():
    table = layer_table(basset_layers())
    row = table.records()[3]
    assert row["name"] == "pool1" and row["pool_size"] == 3 and row["receptive_field"] == 21 and row["jump"] == 3
    assert table.records()[-1]["receptive_field"] == "all"


def test_resolve_layer_by_name_index_and_suggestion():
    layers = basset_layers()
    assert resolve_layer(layers, "pool2")[0] == 6
    assert resolve_layer(layers, 0)[1].name == "conv1"
    with pytest.raises(InputError, match="Did you mean 'conv2'"):
        resolve_layer(layers, "conv_2")


def test_probe_raises():
    with pytest.raises(InputError, match="kind 'convolution'"):
        LayerInfo("x", "convolution")
    with pytest.raises(InputError, match="stride == 0"):
        LayerInfo("x", "conv", stride=0)
    with pytest.raises(InputError, match="unknown layer"):
        receptive_fields([LayerInfo("a", "add", inputs=("nope",))])
    with pytest.raises(InputError, match="different jumps"):
        receptive_fields([
            LayerInfo("a", "conv", kernel_size=3),
            LayerInfo("b", "maxpool", kernel_size=2, stride=2),
            LayerInfo("c", "add", inputs=("a", "b")),
        ])
    with pytest.raises(InputError, match="out of range"):
        resolve_layer(basset_layers(), 99)
    with pytest.raises(InputError, match="whole input"):
        receptive_fields([LayerInfo("d", "dense")])[0].window(0)


def test_branch_from_input_duplicate_names_and_unknown_kind():
    from interpkit.probe import INPUT

    layers = [
        LayerInfo("conv_a", "conv", kernel_size=5),
        LayerInfo("conv_b", "conv", kernel_size=9, inputs=(INPUT,)),  # second branch from the one-hot input
        LayerInfo("cat", "concat", inputs=("conv_a", "conv_b")),
        LayerInfo("crop", "unknown"),
        LayerInfo("conv_c", "conv", kernel_size=3),
    ]
    g = receptive_fields(layers)
    assert g[1].receptive_field == 9 and g[2].receptive_field == 9  # not 5 + 8 = 13
    assert g[3].receptive_field is None and g[4].receptive_field is None  # unknown, never silently wrong
    with pytest.raises(InputError, match="'conv_a' appears twice"):
        receptive_fields([LayerInfo("conv_a", "conv"), LayerInfo("conv_a", "conv")])


def test_same_padding_matches_tensorflow_and_onnx():
    from interpkit.probe import same_padding

    # TensorFlow/ONNX SAME_UPPER: total = max((ceil(L/s) - 1) s + k - L, 0), left = total // 2.
    assert same_padding(3, 2, 100) == 0  # total (50 - 1) * 2 + 3 - 100 = 1 -> left 0, right 1
    assert same_padding(3, 2, 100, lower=True) == 1  # SAME_LOWER puts the odd base on the left
    assert same_padding(5, 1) == 2 and same_padding(4, 1) == 1 and same_padding(4, 1, lower=True) == 2
    assert same_padding(7, 3, 10) == 3  # total (4 - 1) * 3 + 7 - 10 = 6


def test_first_inside_window():
    # start -6, jump 3 (padded conv above a pool): position ceil(6/3) = 2 begins at 0; start -7 -> 3 begins at 2.
    from interpkit import Geometry

    assert Geometry(21, 3, -6).first_inside() == (2, 0)
    assert Geometry(21, 3, -7).first_inside() == (3, 2)
    assert Geometry(9, 3, 0).first_inside() == (0, 0)
    with pytest.raises(InputError, match="whole input"):
        Geometry(None, None, None).first_inside()


def test_window_packing_closed_form():
    # S = ceil(R / jump) * jump, per = 1 + (L - begin - R) // S, positions j0 + t * S / jump.
    from interpkit import Geometry
    from interpkit.probe import window_packing

    cases = [  # geometry, length -> (j0, begin, S, per, positions)
        (Geometry(19, 1, 0), 600, (0, 0, 19, 31, list(range(0, 571, 19)))),  # Basset conv1: 1 + 581 // 19
        (Geometry(21, 3, -6), 100, (2, 0, 21, 4, [2, 9, 16, 23])),  # padded conv above a pool3: 1 + 79 // 21
        (Geometry(22, 4, -7), 100, (2, 1, 24, 4, [2, 8, 14, 20])),  # R not a multiple of the jump: 2-bp gaps
        (Geometry(7, 1, 0), 14, (0, 0, 7, 2, [0, 7])),  # exact fit
        (Geometry(7, 1, 0), 13, (0, 0, 7, 1, [0])),
        (Geometry(22, 4, -7), None, (2, 1, 24, 1, [2])),  # any length: one window in begin + R bp
    ]
    for geom, length, (j0, begin, spacing, per, positions) in cases:
        p = window_packing(geom, length)
        assert (p.position, p.begin, p.spacing, p.per) == (j0, begin, spacing, per), (geom, length)
        assert p.length == (length or begin + geom.receptive_field)
        assert p.positions.tolist() == positions and p.positions.dtype == np.int64
        assert np.arange(1000)[p.selection].tolist() == positions
        # Independent of the layout code: window t is exactly the receptive field of position t, inside the input.
        for t, j in enumerate(positions):
            assert geom.window(j) == (begin + t * spacing, begin + t * spacing + geom.receptive_field)
        assert geom.window(positions[-1])[1] <= p.length


def test_window_packing_pack_and_unpack():
    from interpkit import Geometry
    from interpkit.probe import window_packing
    from interpkit.testing import random_one_hot

    p = window_packing(Geometry(22, 4, -7), 100)  # windows at 1, 25, 49, 73; 4 per input
    W = random_one_hot(6, 22, random_state=0)
    X = p.pack(W)
    assert X.shape == (2, 4, 100) and X.dtype == np.float32
    for i in range(6):  # window i in row i // 4, slot i % 4
        a = 1 + 24 * (i % 4)
        np.testing.assert_array_equal(X[i // 4, :, a:a + 22], W[i])
    assert X.sum() == 6 * 22  # nothing else: the gaps, the edges and the two empty slots are all-N
    np.testing.assert_array_equal(p.unpack_gradients(X, 6), W)  # the embedding read back
    np.testing.assert_array_equal(p.unpack_values(np.arange(8.0).reshape(2, 4), 6), np.arange(6.0))
    assert p.unpack_values(np.zeros((2, 4)), 6).dtype == np.float32
    p.check_positions(21, "conv")  # positions 2 .. 20
    with pytest.raises(InputError, match="layer 'conv' has 20 positions at 100 bp, fewer than its geometry"):
        p.check_positions(20, "conv")
    with pytest.raises(InputError, match=r"W has shape \(6, 4, 21\) but must have shape \(M, 4, 22\)"):
        p.pack(W[:, :, :21])
    with pytest.raises(InputError, match=r"values has shape \(1, 4\) but must have shape \(2, 4\)"):
        p.unpack_values(np.zeros((1, 4)), 6)
    with pytest.raises(InputError, match=r"G has shape \(2, 4, 99\)"):
        p.unpack_gradients(np.zeros((2, 4, 99)), 6)


def test_window_packing_raises():
    from interpkit import Geometry
    from interpkit.probe import window_packing

    with pytest.raises(InputError, match=r"layer 'conv2': its receptive field \(21 bp at offset 2\) does not fit "
                                         r"in the model's 22-bp input"):
        window_packing(Geometry(21, 3, -7), 22, layer="conv2")
    with pytest.raises(InputError, match="whole input"):
        window_packing(Geometry(None, None, None), 100)
    with pytest.raises(InputError, match="length == 0, must be an int >= 1"):
        window_packing(Geometry(7, 1, 0), 0)
