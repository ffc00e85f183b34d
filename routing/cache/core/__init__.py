"""The response cache without Django: keys, directives, stored answers, stores, the semantic index."""
