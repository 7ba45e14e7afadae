"""`python -m pipeline.migrate`: copy projects from any Custom Vision compatible endpoint (Azure Custom Vision or
another Seer) into Seer through the public Training API of both ends. See README, "Moving from Azure Custom
Vision"."""
