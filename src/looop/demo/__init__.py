"""The offline demo and the scripted runner it (and the test suite) decides with."""
