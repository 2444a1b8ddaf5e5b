"""On call: the failure block of every failed task, the Model health data and page."""
