"""Lines of Python files without blank lines, comments and docstrings (docs/new-task.md).

    python tests/tasks/count_lines.py FILE...     # prints: file, total lines, code lines
"""
import ast
import io
import sys
import tokenize


def code_lines(path):
    src = open(path).read()
    doc = set()
    for node in ast.walk(ast.parse(src)):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef)) and node.body and isinstance(node.body[0], ast.Expr) and isinstance(getattr(node.body[0], "value", None), ast.Constant) and isinstance(node.body[0].value.value, str):
            doc |= set(range(node.body[0].lineno, node.body[0].end_lineno + 1))
    lines = set()
    for tok in tokenize.generate_tokens(io.StringIO(src).readline):
        if tok.type not in (tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT, tokenize.ENDMARKER):
            lines |= set(range(tok.start[0], tok.end[0] + 1))
    return len(lines - doc)
for p in sys.argv[1:]:
    print(p, sum(1 for _ in open(p)), code_lines(p))
