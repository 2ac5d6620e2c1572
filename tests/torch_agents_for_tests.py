"""Test agents with networks (kept apart from agents_for_tests, which must stay free of torch:
workers that import it for the other test agents would pay for importing torch)."""

from pathlib import Path

import torch

from steerbench.agents.e2e_agent import E2EAgent
from steerbench.agents.pilotnet import NetConfig, PilotNet

PROBE = "torch_agents_for_tests:TorchProbeE2E"
SINGLE_THREADED = {"torch/threads": 1.0, "torch/deterministic": 1.0}  # its stats where episodes run right


def save_net(path: Path, seed: int, **config) -> Path:
    """A tiny e2e checkpoint in train-e2e's best.pt format (untrained weights drive as well as any)."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        cfg = NetConfig(size="S", **config)
        torch.save({"model": PilotNet(cfg).state_dict(), "config": cfg.as_dict(), "epoch": 0}, path)
    return path


class TorchProbeE2E(E2EAgent):
    """The e2e agent, reporting how torch was set up while its network ran (as agent stats, which
    land in results.jsonl rows)."""

    def __init__(self, options):
        super().__init__(options)
        self.seen: dict[str, float] = {}
        self.net.register_forward_pre_hook(self._probe)

    def _probe(self, module, args):
        self.seen = {"torch/threads": float(torch.get_num_threads()),
                     "torch/deterministic": float(torch.are_deterministic_algorithms_enabled())}

    def stats(self):
        return self.seen
