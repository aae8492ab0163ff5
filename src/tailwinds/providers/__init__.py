"""Wire clients for model servers. They know nothing of nodes or storage."""
