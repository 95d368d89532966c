"""The layering rule of docs/architecture.md holds: import-linter's contracts in
pyproject.toml are kept, and no two modules of the project import each other, directly
or round a longer loop."""

import tomllib
from pathlib import Path

import grimp
from importlinter import cli
from importlinter.application import output

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"
PACKAGES: list[str] = tomllib.loads(PYPROJECT.read_text())["tool"]["importlinter"]["root_packages"]


def test_every_import_contract_is_kept():
    with output.console.capture() as report:
        exit_code = cli.lint_imports(config_filename=str(PYPROJECT), no_cache=True, no_logo=True)
    assert exit_code == cli.EXIT_STATUS_SUCCESS, report.get()


def test_no_modules_of_the_project_import_each_other_in_a_cycle():
    graph = grimp.build_graph(*PACKAGES, include_external_packages=False)
    cycles = ["\n".join(_describe(graph, component)) for component in _cycles(graph, graph.modules)]
    assert not cycles, "Modules in an import cycle:\n" + "\n\n".join(cycles)


def _cycles(graph: grimp.ImportGraph, modules: set[str]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm,
    iterative: the graph is deeper than Python's recursion limit allows for)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    for root in sorted(modules):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.find_modules_directly_imported_by(root))))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            module, imported = work[-1]
            for other in imported:
                if other not in index:
                    index[other] = low[other] = len(index)
                    stack.append(other)
                    on_stack.add(other)
                    work.append(
                        (other, iter(sorted(graph.find_modules_directly_imported_by(other))))
                    )
                    break
                if other in on_stack:
                    low[module] = min(low[module], index[other])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[module])
                if low[module] == index[module]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == module:
                            break
                    if len(component) > 1:
                        components.append(sorted(component))
    return components


def _describe(graph: grimp.ImportGraph, component: list[str]) -> list[str]:
    members = set(component)
    return [
        f"  {importer} -> {imported} (line {details[0]['line_number']})"
        for importer in component
        for imported in sorted(graph.find_modules_directly_imported_by(importer) & members)
        for details in [graph.get_import_details(importer=importer, imported=imported)]
    ]


def test_the_cycle_finder_finds_a_loop_round_three_modules():
    graph = grimp.ImportGraph()
    for importer, imported in [("a.x", "a.y"), ("a.y", "a.z"), ("a.z", "a.x"), ("a.z", "a.w")]:
        graph.add_import(importer=importer, imported=imported)
    assert _cycles(graph, graph.modules) == [["a.x", "a.y", "a.z"]]
