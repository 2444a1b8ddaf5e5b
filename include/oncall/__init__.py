"""On call: the failure block every failed task ends with, and the Model health page (one
reader per source, the sections, the HTML)."""
