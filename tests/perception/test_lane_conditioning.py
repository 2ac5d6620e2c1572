"""The lane model's conditioning: the navigation command (as an input or as one head per command,
`--branched`) and the dead-reckoned heading (`--odometry`) change what the network predicts,
checkpoints from before them still load and resume, and a tiny network learns from each."""

import numpy as np
import pytest
import torch
from test_lane_model import FRAME, SCENARIO, TINY, S, data, saved_network, tiny_config  # noqa: F401 - fixture too

from steerbench.perception import lane_train
from steerbench.perception.lane_data import select_lane_frames
from steerbench.perception.lane_eval import losses
from steerbench.perception.lane_model import (
    LaneModelError,
    LaneNet,
    LaneNetConfig,
    LearnedLanes,
    load_lane_model,
    parameter_count,
)
from steerbench.perception.lane_train import train_lanes
from steerbench.perception.training import save_checkpoint


def a_frame(seed=0):
    return np.random.default_rng(seed).integers(0, 256, (64, 128), dtype=np.uint8)


def test_a_checkpoint_without_commands_loads_and_predicts(tmp_path):
    net = saved_network(tmp_path / "old.pt", old=True)
    assert "commands" not in torch.load(tmp_path / "old.pt", weights_only=True)["config"]
    loaded = load_lane_model(tmp_path / "old.pt")
    assert loaded.net.config.commands == 0 and not loaded.net.config.branched and not loaded.net.config.odometry
    f = a_frame()
    a, b = loaded.predict(f), loaded.predict(f, command=2)  # a network without the input ignores a command
    np.testing.assert_array_equal(a.centres, b.centres)
    np.testing.assert_array_equal(a.centres, LearnedLanes(net, FRAME).predict(f).centres)


def test_the_command_conditions_the_network(tmp_path):
    """Untrained, randomly initialised: each command its own output, the same command the same one;
    a command outside [0, commands) is an all-zero one-hot; no command is an error."""
    plain = LaneNet(LaneNetConfig(s=S, **TINY))
    net = saved_network(tmp_path / "cmd.pt", commands=3)
    assert parameter_count(net) - parameter_count(plain) == TINY["hidden"] * 3
    lanes, loaded = LearnedLanes(net, FRAME), load_lane_model(tmp_path / "cmd.pt")
    assert loaded.net.config.commands == 3
    f = a_frame()
    out = {c: lanes.predict(f, command=c) for c in (0, 1, 2, 3, -1)}
    for a, b in ((0, 1), (1, 2), (0, 2)):
        assert not np.allclose(out[a].valid_prob, out[b].valid_prob) or \
            not np.allclose(np.nan_to_num(out[a].centres), np.nan_to_num(out[b].centres)), (a, b)
    np.testing.assert_array_equal(out[3].centres, out[-1].centres)
    for c in (0, 1, 2):
        again = loaded.predict(f, command=c)
        np.testing.assert_array_equal(again.centres, out[c].centres)
        np.testing.assert_array_equal(again.valid_prob, out[c].valid_prob)
    batch = lanes.predict_batch(np.stack([f] * 3), np.array([2, 0, 1]))
    for got, c in zip(batch, (2, 0, 1)):
        np.testing.assert_allclose(got.valid_prob, out[c].valid_prob, atol=1e-6)
    for call in (lambda: lanes.predict(f), lambda: lanes.estimate(f), lambda: lanes.predict_batch(f[None]),
                 lambda: net(torch.from_numpy(f[None]), torch.tensor([[38.0, 32.0]]), 1.75)):
        with pytest.raises(ValueError, match="command"):
            call()


def test_a_branched_network_runs_each_command_through_its_own_head(tmp_path):
    """Untrained: the command picks its head, the same after a checkpoint round trip; a command
    outside [0, commands) gets the heads' mean; a step on command 1's frames trains only its head."""
    net = saved_network(tmp_path / "branched.pt", commands=3, branched=True)
    loaded = load_lane_model(tmp_path / "branched.pt")
    assert loaded.net.config.branched and len(loaded.net.heads) == 3
    x, ego = torch.from_numpy(np.stack([a_frame()] * 3)), torch.tensor([[38.0, 32.0]] * 3)
    with torch.no_grad():
        features = net.features(net.inputs(x, ego, 1.75))
        raw = net._branch(features, net.one_hot(torch.tensor([0, 2, 7]), 3, features))
        heads = [head(features) for head in net.heads]
    torch.testing.assert_close(raw[0], heads[0][0])
    torch.testing.assert_close(raw[1], heads[2][1])
    torch.testing.assert_close(raw[2], torch.stack([h[2] for h in heads]).mean(dim=0))
    f = a_frame()
    for c in (0, 1, 2):
        np.testing.assert_array_equal(loaded.predict(f, command=c).centres, LearnedLanes(net, FRAME).predict(
            f, command=c).centres)
    before = [[p.detach().clone() for p in head.parameters()] for head in net.heads]
    net.train()
    out = net(x, ego, 1.75, torch.tensor([1, 1, 1]))
    (out["y"].sum() + out["valid"].sum()).backward()
    torch.optim.SGD(net.parameters(), lr=0.1).step()
    moved = [any(not torch.equal(a, b) for a, b in zip(old, head.parameters())) for old, head in zip(before, net.heads)]
    assert moved == [False, True, False]
    with pytest.raises(ValueError, match="branched lane network needs 1 or more commands"):
        LaneNetConfig(s=S, branched=True, **TINY)


def test_a_network_with_odometry_needs_the_heading_and_a_tiny_one_learns_from_it(data):  # noqa: F811
    """The same frame twice, its ego lane 2 m right after no turn and 2 m left after half a turn:
    only the dead-reckoned heading tells them apart, and the trained network follows it."""
    d = select_lane_frames(data, "train", (SCENARIO,), 1, strict=False)
    target = np.repeat(d.centres[:1], 2, 0)
    target[:, 1, :, 1] += np.array([[2.0], [-2.0]])
    frames, turned = np.repeat(d.frames[:1], 2, 0), np.array([0.0, np.pi], np.float32)
    torch.manual_seed(0)
    net = LaneNet(LaneNetConfig(s=tuple(float(v) for v in d.s), odometry=True, **TINY))
    x, ego = torch.from_numpy(frames), torch.from_numpy(np.repeat(d.ego_px[:1], 2, 0))
    with pytest.raises(ValueError, match="dead-reckoned heading"):
        net(x, ego, 1.75)
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    s, target_t = torch.from_numpy(d.s), torch.from_numpy(target)
    valid, width = (torch.from_numpy(np.repeat(a[:1], 2, 0)) for a in (d.valid, d.width))
    for _ in range(400):  # one scalar moves slower than a one-hot
        net.train()
        loss = losses(net(x, ego, 1.75, None, torch.from_numpy(turned)), s, target_t, valid, width)["total"]
        opt.zero_grad()
        loss.backward()
        opt.step()
    lanes = LearnedLanes(net, FRAME, d.geometries[0])
    right, left = lanes.predict_batch(frames, None, turned)
    i = S.index(10.0)
    true = float(d.centres[0, 1, i, 1])
    assert right.centres[1, i, 1] > true + 1.5 and left.centres[1, i, 1] < true - 1.5, \
        (true, right.centres[1, i, 1], left.centres[1, i, 1], float(loss))
    with pytest.raises(ValueError, match="dead-reckoned heading"):
        lanes.predict(frames[0])


@pytest.mark.parametrize("branched", [False, True])
def test_a_tiny_model_learns_the_ego_lane_from_the_command(data, branched):  # noqa: F811
    """The same frame twice, its ego lane 2 m right for command 1 and 2 m left for command 2:
    only the command tells the two apart, and the trained network follows it."""
    d = select_lane_frames(data, "train", (SCENARIO,), 1, strict=False)
    assert d.command.dtype == np.int64 and d.command.shape == (len(d),) and (d.command == 0).all()  # merge: follow
    target = np.repeat(d.centres[:1], 2, 0)
    target[:, 1, :, 1] += np.array([[2.0], [-2.0]])
    frames, command = np.repeat(d.frames[:1], 2, 0), np.array([1, 2])
    torch.manual_seed(0)
    net = LaneNet(LaneNetConfig(s=tuple(float(v) for v in d.s), commands=3, branched=branched, **TINY))
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    x, ego = torch.from_numpy(frames), torch.from_numpy(np.repeat(d.ego_px[:1], 2, 0))
    s, target_t = torch.from_numpy(d.s), torch.from_numpy(target)
    valid, width = (torch.from_numpy(np.repeat(a[:1], 2, 0)) for a in (d.valid, d.width))
    for _ in range(200):
        net.train()
        loss = losses(net(x, ego, 1.75, torch.from_numpy(command)), s, target_t, valid, width)["total"]
        opt.zero_grad()
        loss.backward()
        opt.step()
    right, left = LearnedLanes(net, FRAME, d.geometries[0]).predict_batch(frames, command)
    i = S.index(10.0)
    true = float(d.centres[0, 1, i, 1])
    assert right.centres[1, i, 1] > true + 1.5 and left.centres[1, i, 1] < true - 1.5, \
        (true, right.centres[1, i, 1], left.centres[1, i, 1])


def test_a_branched_run_with_odometry_trains_and_its_checkpoint_needs_the_heading(data, tmp_path):  # noqa: F811
    metrics = train_lanes(tiny_config(data, tmp_path / "run", epochs=1, branched=True, odometry=True))
    model = load_lane_model(metrics["checkpoint"])
    assert model.net.config.branched and model.odometry and model.commands == 1
    frame = select_lane_frames(data, "train-dev", (SCENARIO,), 1, strict=False).frames[0]
    assert model.predict(frame, command=0, turned=0.3).valid.shape == (3,)
    with pytest.raises(ValueError, match="dead-reckoned heading"):
        model.predict(frame, command=0)
    with pytest.raises(LaneModelError, match=r"another configuration \(odometry: stored true, now default\); use"):
        train_lanes(tiny_config(data, tmp_path / "run", epochs=1))  # the same logdir without it


def test_a_run_from_before_the_command_input_resumes_as_stored(data, tmp_path, monkeypatch):  # noqa: F811
    """Its last.pt's network has no `commands` (none): the resume keeps it so; a stored count
    other than the scenarios' (and not 0) is refused."""
    monkeypatch.setattr(lane_train, "command_count", lambda scenarios: 0)
    train_lanes(tiny_config(data, tmp_path / "old", epochs=1, branched=False))  # as runs were then
    monkeypatch.undo()
    last = tmp_path / "old" / "checkpoints" / "last.pt"
    blob = torch.load(last, weights_only=True)
    del blob["config"]["commands"]
    save_checkpoint(last, blob)
    resumed = train_lanes(tiny_config(data, tmp_path / "old", epochs=2, branched=False))
    assert resumed["epochs_run"] == 2 and load_lane_model(resumed["checkpoint"]).net.config.commands == 0
    blob = torch.load(last, weights_only=True)
    assert blob["config"]["commands"] == 0
    blob["config"]["commands"] = 2  # merge has 1
    save_checkpoint(last, blob)
    with pytest.raises(LaneModelError, match="2 navigation commands"):
        train_lanes(tiny_config(data, tmp_path / "old", epochs=3, branched=False))


def test_train_lanes_and_the_studies_train_one_head_per_command_by_default(data, tmp_path):  # noqa: F811
    from steerbench.cli import build_parser
    from steerbench.study.models import Budget, Models

    parse = build_parser().parse_args
    assert parse(["train-lanes", "--data", str(data), "--logdir", "x"]).branched
    assert not parse(["train-lanes", "--data", str(data), "--logdir", "x", "--no-branched"]).branched
    assert Models(tmp_path, Budget((SCENARIO,))).lanes_config(0).branched
    metrics = train_lanes(tiny_config(data, tmp_path / "run", epochs=1))
    assert load_lane_model(metrics["checkpoint"]).net.config.branched


def test_named_commands_give_every_distinct_command_its_own_position():
    from steerbench.perception.lane_data import LaneFrameSet, by_name
    from steerbench.sim.scenarios import SUITE

    names = lane_train.command_names(tuple(SUITE))
    assert names[0] == "follow" and len(names) == len(set(names)) == 7  # follow once, 3 exits, 3 turns
    n = 3
    made = LaneFrameSet("train", np.zeros((n, 64, 128), np.uint8), np.array([0, 1, 1]), ("merge", "roundabout"),
                        (None, None), np.asarray(S), np.zeros((n, 3, len(S), 2), np.float32), np.ones((n, 3), bool),
                        np.ones((n, 3), np.float32), command=np.array([0, 0, 2]))
    # merge's follow, the roundabout's exit 1 and exit 3: by index 0, 0, 2; by name three apart
    assert by_name(made, names).command.tolist() == [0, 1, 3]


def test_a_named_commands_run_stores_its_names_and_is_its_own_configuration(data, tmp_path):  # noqa: F811
    m = train_lanes(tiny_config(data, tmp_path / "named", epochs=1, named_commands=True))
    model = load_lane_model(m["checkpoint"])
    assert model.net.config.names == ("follow",) and model.commands == 1
    assert model.command_for(("follow",), 0) == 0 and model.command_for(("exit 1 (east)",), 0) == -1
    assert LaneNetConfig.from_dict(model.net.config.as_dict()) == model.net.config
    plain = load_lane_model(train_lanes(tiny_config(data, tmp_path / "plain", epochs=1))["checkpoint"])
    assert "names" not in plain.net.config.as_dict() and plain.command_for(("exit 1 (east)",), 0) == 0
    with pytest.raises(LaneModelError, match="another configuration"):
        train_lanes(tiny_config(data, tmp_path / "named", epochs=2))
