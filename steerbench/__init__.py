"""steerbench: modular vs end-to-end driving on the same highway-env scenarios, seeds and pixels.

The sub-packages live in the repository's top-level folders: `steerbench.sim` (sim/),
`steerbench.perception` (perception/), `steerbench.planning` (planning/) and
`steerbench.agents` (agents/).
"""

__version__ = "0.1.0"
