"""Loading and chunking: the corpus' four conventions, cleaning, and window-sized pieces."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from assistant.knowledge.corpus import Chunker, clean_text
from assistant.knowledge.errors import LoadError
from tests.conftest import CORPUS

FAQ, BASICS, INTERVIEW, PRACTICES = (
    "deep-learning-projects-faq.md",
    "deep-learning-basics-qa.txt",
    "deep-learning-interview-questions.txt",
    "common-practices-in-deep-learning.txt",
)


@pytest.fixture(scope="module")
def chunker(embedder) -> Chunker:
    return Chunker(embedder.count_tokens, embedder.max_tokens, 24)


@pytest.fixture(scope="module")
def units(chunker):
    return {p.name: chunker.load(p) for p in CORPUS.iterdir()}


def test_one_unit_per_question_in_each_format(units):
    faq = [u for u in units[FAQ] if u.kind == "qa"]
    assert len(faq) == 14
    assert faq[0].title == "My model training takes too much RAM, how do I solve this?"
    assert faq[-1].title == "How can I optimize the hyperparameters of my deep learning model?"

    basics = units[BASICS]
    assert len(basics) == 11 and all(u.kind == "qa" for u in basics)
    titles = [u.title for u in basics]
    assert "how does deep lerning differ from traditional machine learning?" in titles  # typo kept
    assert "How do I improve the performance of my deep learning model?" in titles  # was indented
    assert titles[-1] == "How can I use deep learning for natural language processing?"

    interview = units[INTERVIEW]
    assert len(interview) == 5
    assert (
        interview[4].title == "How do you determine the appropriate batch size for training a neural network?"
    )
    assert not interview[0].text.startswith("Answer")

    practices = units[PRACTICES]
    assert [u.title for u in practices if u.kind == "section"] == [
        "Progressive Approach",
        "State of the Art Algorithms",
        "Designing your Own Neural Net Architecture",
        "Transfer Learning",
    ]


def test_metadata(units):
    for name, doc_units in units.items():
        assert [u.position for u in doc_units] == list(range(len(doc_units)))
        for u in doc_units:
            assert u.source == name and Path(u.path).is_absolute()
            assert re.fullmatch(r"[0-9a-f]{16}", u.id)
    assert units[FAQ][0].doc_title == "Deep Learning Projects Q&A Section"
    assert units[BASICS][0].doc_title == "Deep Learning"
    assert units[INTERVIEW][0].doc_title == "Deep Learning Interview Questions"  # from the file name
    assert units[PRACTICES][0].doc_title == "Common Practices in Deep Learning"


def test_ids_are_stable_and_follow_content(chunker, tmp_path):
    again = chunker.load(CORPUS / FAQ)
    assert [u.id for u in again] == [u.id for u in chunker.load(CORPUS / FAQ)]
    edited = tmp_path / FAQ
    edited.write_text((CORPUS / FAQ).read_text().replace("fewer parameters", "fewer weights"))
    changed = {u.id for u in chunker.load(edited)} ^ {u.id for u in again}
    assert len(changed) == 2  # only the edited unit's id moved


BOILERPLATE = [
    "See the source image",
    "Pin by",
    "No comments",
    "Post a Comment",
    "WordPress",
    "Leave a reply",
    "responses to",
    "Get started",
    "Comment it down",
    "fb.com/HelloWorldFB",
    "Stay safe",
]


def test_boilerplate_and_markdown_glitches_never_reach_units(units):
    for doc_units in units.values():
        for u in doc_units:
            for text in [u.text, u.title, *u.pieces, *u.keys]:
                for junk in BOILERPLATE:
                    assert junk not in text, (u.source, u.title, junk)
                assert not re.search(r"^gif$", text, re.M)
                assert "\\." not in text and "**" not in text and "  " not in text
    ram = units[FAQ][1]
    assert ram.text.startswith("- Reduce Model Complexity: Use a smaller architecture")
    alternatives = units[FAQ][2]
    assert alternatives.text.startswith("- TensorFlow: A powerful open-source library")


def test_clean_text_normalises_bullets_and_whitespace():
    text = "Title\r\n\r\n   \u2022 first   point\n-**Bold**: x\n**Topic**: y\n\n\n\nend \\. here"
    assert clean_text(text) == "Title\n\n- first point\n- Bold: x\n- Topic: y\n\nend . here"


def test_long_answers_fit_the_window_with_the_question_repeated(units, chunker, embedder):
    assert chunker.max_tokens == 256
    split = [u for doc in units.values() for u in doc if len(u.pieces) > 1]
    assert len(split) >= 5  # the interview answers are 300-500 words
    for doc in units.values():
        for u in doc:
            for text in [*u.pieces, *u.keys]:
                assert embedder.count_tokens(text) <= 256
            for piece in u.pieces:
                assert piece.startswith(u.header + "\n\n")
    for u in split:  # no text lost between pieces: every sentence of the answer is in some piece
        body = " ".join(p.split("\n\n", 1)[1] for p in u.pieces)
        squashed = re.sub(r"\s+", " ", body)
        for sentence in re.split(r"(?<=[.?!:])\s+", u.text):
            assert re.sub(r"\s+", " ", sentence.strip()) in squashed, sentence


def test_a_sub_heading_stays_with_its_paragraph(units):
    for u in units[INTERVIEW]:
        for piece in u.pieces:
            assert not piece.rstrip().endswith(":"), piece[-80:]


def test_generic_markdown_goes_through_the_heading_splitter(chunker, tmp_path):
    doc = tmp_path / "notes.md"
    doc.write_text(
        "# Training notes\n\n## Mixed precision\n\nUse bf16 autocast on Ampere GPUs to halve activation "
        "memory.\n\n## Checkpointing\n\nActivation checkpointing trades compute for memory.\n"
    )
    units = chunker.load(doc)
    assert [u.title for u in units] == ["Mixed precision", "Checkpointing"]
    assert all(u.kind == "passage" and u.doc_title == "Training notes" for u in units)
    assert units[0].pieces[0].startswith("Training notes: Mixed precision\n\n")
    assert units[0].text.startswith("Use bf16 autocast")


def test_long_plain_text_becomes_several_window_sized_units(chunker, embedder, tmp_path):
    doc = tmp_path / "essay.txt"
    doc.write_text(
        "Notes on optimisers\n\n" + " ".join(f"Sentence {i} is about momentum and Adam." for i in range(300))
    )
    units = chunker.load(doc)
    assert len(units) > 3
    assert all(embedder.count_tokens(u.pieces[0]) <= 256 for u in units)
    assert units[1].title.endswith("(part 2)")


def _minimal_pdf(text: str) -> bytes:
    stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out, offsets = b"%PDF-1.4\n", []
    for i, obj in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + obj + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return out


def test_pdf_and_html_are_read(chunker, tmp_path):
    pdf = tmp_path / "tips.pdf"
    pdf.write_bytes(_minimal_pdf("Gradient clipping stops exploding gradients in recurrent networks."))
    units = chunker.load(pdf)
    assert "Gradient clipping stops exploding gradients" in units[0].text

    html = tmp_path / "page.html"
    html.write_text(
        "<html><head><script>var x=1;</script></head><body><h1>Debugging</h1><h2>NaN loss</h2>"
        "<p>Lower the learning rate and check for log(0).</p><nav>menu</nav></body></html>"
    )
    units = chunker.load(html)
    assert (units[0].doc_title, units[0].title) == ("Debugging", "NaN loss")
    assert units[0].text == "Lower the learning rate and check for log(0)."


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("blob.txt", b"\x00\x01\x02binary", "binary file"),
        ("latin1.txt", "caf\xe9 na\xefve".encode("latin-1"), "not UTF-8"),
        ("image.png", b"\x89PNG\r\n", "unsupported file type"),
        ("broken.pdf", b"%PDF-1.4 garbage", "unparsable PDF"),
        ("empty.md", b"   \n\n ", "no text"),
    ],
)
def test_bad_files_raise_a_load_error_naming_the_file(chunker, tmp_path, name, content, reason):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(LoadError, match=rf"^{re.escape(name)}: .*{reason}"):
        chunker.load(path)


def test_oversized_file_is_refused(chunker, tmp_path):
    path = tmp_path / "big.txt"
    path.write_text("word " * 1000)
    with pytest.raises(LoadError, match="over the"):
        chunker.load(path, max_bytes=100)
