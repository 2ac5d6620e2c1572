"""The end-to-end network and its data."""

import numpy as np
import pytest
import torch

from steerbench.agents.e2e_data import ImitationDataset
from steerbench.agents.pilotnet import NetConfig, PilotNet, parameter_count
from steerbench.agents.registry import AgentSpec
from steerbench.harness.collect import CollectConfig, collect


def test_sizes_grow_and_shapes_hold():
    counts = [parameter_count(PilotNet(NetConfig(size=s))) for s in "SML"]
    assert counts[0] < counts[1] < counts[2]
    net = PilotNet(NetConfig(size="S", outputs=2))
    out = net(torch.zeros(5, 4, 64, 128, dtype=torch.uint8), torch.full((5,), 20.0), torch.tensor([0, 1, 2, 0, 1]))
    assert out.shape == (5, 2) and out.abs().max() <= 1
    rgb = PilotNet(NetConfig(size="S", channels=3))
    assert rgb(torch.zeros(2, 4, 64, 128, 3, dtype=torch.uint8), torch.zeros(2), torch.zeros(2)).shape == (2, 1)


def test_the_command_selects_a_branch():
    torch.manual_seed(0)
    net = PilotNet(NetConfig(size="S")).eval()
    frames = torch.randint(0, 255, (1, 4, 64, 128), dtype=torch.uint8)
    outs = [net(frames, torch.tensor([10.0]), torch.tensor([c])).item() for c in range(3)]
    assert len(set(np.round(outs, 6))) == 3
    with pytest.raises(ValueError, match="out of range"):
        net(frames, torch.tensor([10.0]), torch.tensor([3]))
    with pytest.raises(ValueError, match="size"):
        NetConfig(size="XL")


def test_state_dict_round_trips_with_weights_only(tmp_path):
    net = PilotNet(NetConfig(size="S"))
    torch.save({"config": net.config.as_dict(), "model": net.state_dict()}, tmp_path / "ckpt.pt")
    blob = torch.load(tmp_path / "ckpt.pt", weights_only=True)
    again = PilotNet(NetConfig(**blob["config"]))
    again.load_state_dict(blob["model"])
    x = (torch.zeros(1, 4, 64, 128, dtype=torch.uint8), torch.tensor([5.0]), torch.tensor([1]))
    assert torch.equal(net.eval()(*x), again.eval()(*x))


def test_dataset_gives_stacks_and_clean_targets(tmp_path):
    collect(CollectConfig(teacher=AgentSpec("expert", "steerbench.agents.expert:ExpertAgent"), scenarios=("merge",),
                          episodes=1, out=tmp_path, noise_std=0.3, noise_fraction=1.0, progress=False))
    data = ImitationDataset(tmp_path, "train")
    ep = data.episodes[0]
    frames, speed, command, target = data[5]
    assert frames.shape == (4, 64, 128) and frames.dtype == torch.uint8
    assert torch.equal(frames[-1], torch.from_numpy(ep.frames[5]))
    assert torch.equal(frames[0], torch.from_numpy(ep.frames[2]))
    assert target.item() == pytest.approx(float(ep.action[5, 1]))
    assert target.item() != pytest.approx(float(ep.executed[5, 1]))
    assert len(data) == len(ep.speed) and speed.item() == pytest.approx(float(ep.speed[5]))
