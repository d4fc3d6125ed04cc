"""Azure Functions adapters (blueprints): the only modules that import ``azure.functions``."""
