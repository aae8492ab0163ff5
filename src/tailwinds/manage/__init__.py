"""Managing what the runs use: chatflows (validated, their secrets sealed, their MCP tool
names unique) and their export and import. No HTTP here: the routes call these services."""
