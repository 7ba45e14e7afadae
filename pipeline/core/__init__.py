"""Core: settings, errors, vocabulary, limits, domains and the one box type; imports nothing else of Seer."""
