"""Core: settings, errors, vocabulary and domains; imports nothing else of Seer."""
