# The declarative configuration writes other apps' models; it has none of its own.
