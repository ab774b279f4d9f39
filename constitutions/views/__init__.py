"""Constitution pages, one module per area: browsing and diffs (:mod:`.browse`), the editor and version
actions (:mod:`.editor`), YAML/JSON files (:mod:`.files`) and the judge-prompt preview (:mod:`.preview`)."""
