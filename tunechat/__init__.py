"""tunechat's application layer: the `tunechat` command (`tunechat.cli`, one module per
command), the options and terminal loops the front ends share, and the demo recipes.

Importing it imports `agents` (light: lagent loads on first use), which registers the Lagent
agent's renderer for tool-call records with `sdk.training`."""
import agents  # noqa: F401  (registers the tool-call renderer)
