"""Console pages for functions: list, create, the function page and its Configuration tab."""
