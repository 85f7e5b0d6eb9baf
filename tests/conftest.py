pytest_plugins = ["tests.fixtures", "tests.model_server.fixture"]
