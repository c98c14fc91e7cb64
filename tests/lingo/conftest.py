from lingo.fakes import scripted  # noqa: F401  (fixture)
