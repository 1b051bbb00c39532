def test_from_import_copy_is_found_with_an_evaluable_path(scenario):
    scenario.write("plug.py", "def greet(): return 'hello'\n")
    scenario.write("consumer.py", "from plug import greet\n")
    r = scenario.run("""
        import reloadscope, rs
        reloadscope.install()
        import plug, consumer
        rs.edit(plug, "def greet(): return 'hi'\\n")
        assert consumer.greet() == 'hello'
        rs.report()
    """)
    entry = r.one("plug", kind="function", qualname="greet")
    assert entry["generation"] == 0
    assert r.texts(entry) == ["consumer.greet"]
    assert "from plug import greet" in entry["paths"][0]["hint"]
    r.assert_paths_evaluate()
    assert r.module("plug")["current_generation"] == 1
