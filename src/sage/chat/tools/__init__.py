"""Tools the chat model may call over Sage's own data (see base.ToolBox); one module per group."""
