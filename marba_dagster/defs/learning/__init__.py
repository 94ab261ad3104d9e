"""learning_engine: patterns with lift, confidence and significance."""
