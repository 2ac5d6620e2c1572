"""Agents by registry name, module:Class path and entry point, with typed options."""

import textwrap

import numpy as np
import pytest

from steerbench.agents.expert import ExpertAgent, ExpertOptions
from steerbench.agents.registry import AgentError, AgentSpec, build_options, known_agents, resolve


def test_builtins_resolve():
    assert resolve("expert") == "steerbench.agents.expert:ExpertAgent"
    assert {"expert", "lane_keeper", "idle"} <= set(known_agents())


def test_unknown_agent_suggests_a_name():
    with pytest.raises(AgentError, match="did you mean 'expert'"):
        resolve("expret")


def test_module_class_path_builds_the_example_agent():
    agent = AgentSpec("mine", "my_agent:RoadCentreAgent", (("gain", "0.1"),))()
    assert agent.o.gain == 0.1 and agent.info.inputs == "pixels"


def test_bad_module_path_is_one_clear_error():
    with pytest.raises(AgentError, match="cannot import"):
        AgentSpec("x", "no_such_module:Agent")()
    with pytest.raises(AgentError, match="has no attribute"):
        AgentSpec("x", "my_agent:Nope")()


def test_options_are_typed_and_validated():
    opts = build_options(ExpertAgent, {"politeness": "0.5", "overtake_on_routes": "yes"})
    assert opts == ExpertOptions(politeness=0.5, overtake_on_routes=True)
    with pytest.raises(AgentError, match="expected float"):
        build_options(ExpertAgent, {"politeness": "high"})
    with pytest.raises(AgentError, match="did you mean 'politeness'"):
        build_options(ExpertAgent, {"politness": "0.5"})
    with pytest.raises(AgentError, match="safe_braking must be > 0"):
        build_options(ExpertAgent, {"safe_braking": "-1"})
    with pytest.raises(AgentError, match="expected true or false"):
        build_options(ExpertAgent, {"overtake_on_routes": "maybe"})


def test_entry_point_agents_are_found(tmp_path, monkeypatch):
    (tmp_path / "ep_agent_pkg.py").write_text(textwrap.dedent('''
        import numpy as np
        from steerbench.agents.base import AgentInfo
        class Straight:
            info = AgentInfo("straight", "pixels")
            def reset(self, episode): pass
            def act(self, obs): return np.zeros(2)
    '''))
    dist = tmp_path / "ep_agent_pkg-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: ep-agent-pkg\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[steerbench.agents]\nstraight = ep_agent_pkg:Straight\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert resolve("straight") == "ep_agent_pkg:Straight"
    agent = AgentSpec("straight", resolve("straight"))()
    assert np.array_equal(agent.act(None), np.zeros(2))


def test_an_object_without_the_protocol_is_refused():
    with pytest.raises(AgentError, match="has no reset"):
        AgentSpec("x", "builtins:object")()
