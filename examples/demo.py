"""The demo: inspect, train, evaluate, predict and check the labels of the shipped demo catalog.

Run with `make demo`. Everything it writes goes to demo-output/.
"""

from pathlib import Path

from rich.console import Console

from prodcat import Categorizer
from prodcat.catalog.fields import resolve_fields
from prodcat.catalog.inspect import inspect_catalog, render_inspection
from prodcat.catalog.load import load_catalog

HERE = Path(__file__).resolve().parent
CATALOG = HERE / "demo_catalog.csv"
OUT = Path("demo-output")

console = Console()
fields = dict(text_cols=["title", "description"], label_col="category", label_format="path", id_cols=["sku"])

console.rule("1. inspect the catalog")
mapping = resolve_fields(text_cols=fields["text_cols"], label_cols=[fields["label_col"]], label_format="path")
render_inspection(inspect_catalog(load_catalog(CATALOG, mapping), top=5), console)

console.rule("2. train tfidf-linear (grouped split: 80% train, 10% validation, 10% test)")
clf = Categorizer(model="tfidf-linear", **fields, seed=0)
clf.fit(CATALOG)
model_dir = clf.save(OUT / "model")
test = clf.metrics_["test"]
console.print(
    f"held-out test: accuracy {test['accuracy']:.3f}, macro-F1 {test['macro_f1']:.3f}, "
    f"top-3 accuracy {test['top3_accuracy']:.3f} on {test['n']} products"
)

console.rule("3. load the saved model and predict new products")
loaded = Categorizer.load(model_dir)
new_products = [
    {"title": "Men's slim fit oxford shirt, white", "description": "Button-down collar, 100% cotton."},
    {"title": "Stainless steel chef knife 20 cm", "description": ""},
    {"title": "Noise cancelling over-ear headphones", "description": "30 h battery, Bluetooth 5.3."},
    {"title": "Eau de parfum 50 ml, floral", "description": "Notes of jasmine and bergamot."},
    {"title": "Adjustable dumbbell pair 2 x 10 kg", "description": ""},
]
table = loaded.predict_table(new_products, top_k=2)
for product, (_, row) in zip(new_products, table.iterrows()):
    console.print(
        f"  {product['title']:<42} -> [bold]{row['prediction']}[/bold] ({row['confidence']:.0%})"
        f"   next: {row['label_2']} ({row['prob_2']:.0%})"
    )

console.rule("4. which labels are probably wrong? (each product judged by models that never saw it)")
issues = Categorizer(model="tfidf-linear", **fields, seed=0, quiet=True).find_label_issues(CATALOG)
flagged = issues[issues["label_issue"]].sort_values("label_quality")
# The titles filed under two categories on purpose have descriptions that tell
# them apart, so confident learning may flag none: then show the most doubtful.
console.print(f"{len(flagged)} of {len(issues)} products flagged" + (
    ":" if len(flagged) else "; the labels the judging models doubted most (lowest label quality):"))
shown = flagged if len(flagged) else issues.sort_values("label_quality")
for _, row in shown.head(5).iterrows():
    console.print(f"  {row['sku']}: filed under {row['label']}, looks like {row['suggested']} "
                  f"(label quality {row['label_quality']:.3f})  ({row['text'][:50]}...)")

console.rule("5. the same from the command line")
console.print(f"  prodcat evaluate {model_dir} --data {CATALOG} --out {OUT / 'report'}")
console.print(f"  prodcat predict {model_dir} --data {CATALOG} --out {OUT / 'predictions.csv'} --top-k 3")
console.print(f"  prodcat label-issues --data {CATALOG} --text-cols title,description --label-col category "
              f"--label-format path --id-cols sku --out {OUT / 'label_issues.csv'}")
console.print(f"\nmodel: {model_dir}\nreport on the held-out test split: {model_dir / 'report' / 'report.md'}")
