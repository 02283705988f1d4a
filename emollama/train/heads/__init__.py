"""The recipes that rebuild the shipped heads in ``emollama/assets/heads``, one ``python -m`` entry point each."""
