"""Generate the competitor-page corpus of ``bench.competitive_precision`` (deterministic).

    python -m bench.competitive_corpus            # writes bench/data/competitive_corpus/

Each case is one competitor with one or two watched pages, in five loads per page:
``before``, ``before_again`` and ``before_third`` (the same content, loaded three times when
the page is first seen), ``after`` (the next run: the same content again for a noise-only
case, or the labelled change) and ``after_again`` (a confirmation load taken just after
``after``). Every load draws its own noise at random (seeded), so noise sometimes repeats
between two loads by chance, as it does on real sites.

Kinds of page: shops, SaaS pricing pages, news-style home pages, restaurant menus; in
English, German, French and Spanish; prices in USD, EUR and GBP. Kinds of noise (class names
drawn from made-up vocabularies, not from any filter list; token shapes varied): request and
session ids, support codes, build and node labels, live counters (viewers, items left, items
sold, visitors), rotating promo and announcement bars, rotating testimonials, "most read"
and "you may also like" boxes with other items (with prices), recommendation lists in
another order, relative times and localised clocks, weather tickers, generated CSS class
names that change per load, JSON-LD keys in another order, tracking scripts and pixels.

``manifest.json`` lists the cases with their labelled changes: ``pricing_change`` (the
product and its new price), ``product_launch`` (the product), ``website_change`` and
``messaging_shift``; a case with no label is noise only.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import zlib
from dataclasses import dataclass, field, replace
from html import escape
from pathlib import Path

OUT = Path(__file__).parent / "data" / "competitive_corpus"
LOADS = ("before", "before_again", "before_third", "after", "after_again")

# ------------------------------------------------------------------------- vocabularies

UI = {
    "en": {
        "cart": "Cart",
        "add": "Add to basket",
        "month": "per month",
        "menu": "Our menu",
        "viewing": "{n} people are viewing this right now",
        "left": "Only {n} left in stock",
        "sold": "{n} sold in the last 24 hours",
        "visitors": "{n} visitors today",
        "updated": "Updated {n} minutes ago",
        "also": "You may also like",
        "popular": "Most read",
        "picks": "Customers also bought",
        "promos": [
            "Free shipping on orders over 50",
            "Spring sale: save up to 30 percent this week",
            "New customers get a welcome gift with their first order",
            "Download our app and earn double points",
            "Gift cards are back in stock for the holidays",
            "Join our newsletter for early access to new arrivals",
        ],
        "quotes": [
            "Fantastic service, my order arrived the next morning. - Laura",
            "The best value I have found anywhere in town. - Mike",
            "Friendly team and great quality, highly recommended. - Priya",
            "I switched last year and never looked back. - Tom",
        ],
        "support": "Support code",
        "weather": "London {n}°C, light rain",
    },
    "de": {
        "cart": "Warenkorb",
        "add": "In den Warenkorb",
        "month": "pro Monat",
        "menu": "Unsere Speisekarte",
        "viewing": "{n} Personen sehen sich das gerade an",
        "left": "Nur noch {n} auf Lager",
        "sold": "{n} mal verkauft in den letzten 24 Stunden",
        "visitors": "Heute {n} Besucher",
        "updated": "Aktualisiert vor {n} Minuten",
        "also": "Das könnte Ihnen auch gefallen",
        "popular": "Meistgelesen",
        "picks": "Kunden kauften auch",
        "promos": [
            "Kostenloser Versand ab 50 Euro Bestellwert",
            "Frühlingsaktion: bis zu 30 Prozent sparen",
            "Neukunden erhalten ein Willkommensgeschenk",
            "Jetzt die App laden und doppelt Punkte sammeln",
            "Gutscheine sind wieder verfügbar",
            "Newsletter abonnieren und früher einkaufen",
        ],
        "quotes": [
            "Toller Service, die Lieferung kam am nächsten Morgen. - Anna",
            "Das beste Preis-Leistungs-Verhältnis in der Stadt. - Jonas",
            "Freundliches Team und super Qualität. - Mehmet",
            "Seit einem Jahr Kunde und sehr zufrieden. - Petra",
        ],
        "support": "Servicecode",
        "weather": "Berlin {n} °C, bewölkt",
    },
    "fr": {
        "cart": "Panier",
        "add": "Ajouter au panier",
        "month": "par mois",
        "menu": "Notre carte",
        "viewing": "{n} personnes consultent cet article",
        "left": "Plus que {n} en stock",
        "sold": "{n} vendus ces dernières 24 heures",
        "visitors": "{n} visiteurs aujourd'hui",
        "updated": "Mis à jour il y a {n} min",
        "also": "Vous aimerez aussi",
        "popular": "Les plus lus",
        "picks": "Les clients ont aussi acheté",
        "promos": [
            "Livraison offerte dès 50 euros d'achat",
            "Soldes de printemps : jusqu'à 30 pour cent de remise",
            "Un cadeau de bienvenue pour votre première commande",
            "Téléchargez l'application et cumulez deux fois plus de points",
            "Les cartes cadeaux sont de retour",
            "Inscrivez-vous à la lettre d'information",
        ],
        "quotes": [
            "Service impeccable, livré le lendemain matin. - Claire",
            "Le meilleur rapport qualité-prix du quartier. - Julien",
            "Équipe aimable et produits de qualité. - Nadia",
            "Client depuis un an et toujours ravi. - Marc",
        ],
        "support": "Code assistance",
        "weather": "Paris {n} °C, éclaircies",
    },
    "es": {
        "cart": "Carrito",
        "add": "Añadir al carrito",
        "month": "al mes",
        "menu": "Nuestra carta",
        "viewing": "{n} personas están viendo esto ahora",
        "left": "¡Solo quedan {n} unidades!",
        "sold": "{n} vendidos en las últimas 24 horas",
        "visitors": "{n} visitantes hoy",
        "updated": "Actualizado hace {n} minutos",
        "also": "También te puede gustar",
        "popular": "Lo más leído",
        "picks": "Los clientes también compraron",
        "promos": [
            "Envío gratis en pedidos superiores a 50 euros",
            "Rebajas de primavera: hasta un 30 por ciento",
            "Regalo de bienvenida en tu primer pedido",
            "Descarga la app y gana el doble de puntos",
            "Las tarjetas regalo vuelven a estar disponibles",
            "Suscríbete al boletín y compra antes que nadie",
        ],
        "quotes": [
            "Servicio excelente, llegó a la mañana siguiente. - Lucía",
            "La mejor relación calidad-precio de la ciudad. - Diego",
            "Equipo amable y gran calidad. - Sofía",
            "Cliente desde hace un año y encantado. - Pablo",
        ],
        "support": "Código de soporte",
        "weather": "Madrid {n} °C, soleado",
    },
}

SHOP_ITEMS = {
    "en": [
        "Linen Shirt",
        "Canvas Tote",
        "Wool Beanie",
        "Leather Belt",
        "Rain Jacket",
        "Cotton Socks",
        "Denim Jeans",
        "Silk Scarf",
        "Trail Sneakers",
        "Knit Sweater",
    ],
    "de": [
        "Leinenhemd",
        "Stofftasche",
        "Wollmütze",
        "Ledergürtel",
        "Regenjacke",
        "Baumwollsocken",
        "Jeanshose",
        "Seidenschal",
        "Laufschuhe",
        "Strickpullover",
    ],
    "fr": [
        "Chemise en lin",
        "Sac cabas",
        "Bonnet en laine",
        "Ceinture en cuir",
        "Veste de pluie",
        "Chaussettes en coton",
        "Jean brut",
        "Foulard en soie",
        "Baskets de trail",
        "Pull en maille",
    ],
    "es": [
        "Camisa de lino",
        "Bolso de lona",
        "Gorro de lana",
        "Cinturón de cuero",
        "Chaqueta impermeable",
        "Calcetines de algodón",
        "Vaqueros",
        "Pañuelo de seda",
        "Zapatillas de montaña",
        "Jersey de punto",
    ],
}
DISHES = {
    "en": [
        "Margherita Pizza",
        "Caesar Salad",
        "Fish and Chips",
        "Mushroom Risotto",
        "Beef Burger",
        "Tomato Soup",
        "Lemon Tart",
        "Chicken Curry",
    ],
    "de": [
        "Pizza Margherita",
        "Caesar Salat",
        "Wiener Schnitzel",
        "Pilzrisotto",
        "Rindfleischburger",
        "Tomatensuppe",
        "Apfelstrudel",
        "Käsespätzle",
    ],
    "fr": [
        "Pizza Margherita",
        "Salade César",
        "Croque-monsieur",
        "Risotto aux champignons",
        "Steak frites",
        "Soupe à l'oignon",
        "Tarte au citron",
        "Boeuf bourguignon",
    ],
    "es": [
        "Pizza Margarita",
        "Ensalada César",
        "Paella valenciana",
        "Risotto de setas",
        "Hamburguesa de ternera",
        "Gazpacho",
        "Tarta de queso",
        "Tortilla española",
    ],
}
PLANS = ["Starter", "Team", "Business", "Enterprise", "Scale"]
SAAS_NAMES = ["Flowbase", "Notely", "Pipewise", "Stackly", "Taskora", "Cloudnest"]
NEWS_TOPICS = {
    "en": [
        "City council approves new cycle lanes",
        "Local bakery wins national award",
        "Harbour festival returns this summer",
        "New library opens in the old station",
        "Tram line extension delayed to spring",
        "Schools launch free breakfast scheme",
    ],
    "de": [
        "Stadtrat beschließt neue Radwege",
        "Bäckerei gewinnt Bundespreis",
        "Hafenfest kehrt im Sommer zurück",
        "Neue Bibliothek im alten Bahnhof",
        "Verlängerung der Straßenbahn verzögert sich",
        "Schulen starten kostenloses Frühstück",
    ],
    "fr": [
        "Le conseil municipal approuve de nouvelles pistes cyclables",
        "Une boulangerie locale primée",
        "La fête du port revient cet été",
        "Une nouvelle bibliothèque dans l'ancienne gare",
        "Le prolongement du tram repoussé au printemps",
        "Petit-déjeuner gratuit dans les écoles",
    ],
    "es": [
        "El ayuntamiento aprueba nuevos carriles bici",
        "Una panadería local gana un premio",
        "Vuelve la fiesta del puerto este verano",
        "Nueva biblioteca en la antigua estación",
        "Se retrasa la ampliación del tranvía",
        "Desayuno gratuito en los colegios",
    ],
}
# Made-up class vocabularies: no filter list knows these words.
CLASS_WORDS = [
    "belt",
    "strip",
    "ribbon",
    "topline",
    "ticker",
    "zeile",
    "bandeau",
    "franja",
    "notice",
    "callout",
    "marquee",
    "slab",
    "rail",
    "shelf",
    "well",
    "pane",
    "deck",
    "crate",
    "bucket",
    "lane",
    "nook",
    "tray",
]

COPY = {
    "en": {
        "hero": [
            "Everyday essentials made to last, delivered to your door",
            "Premium business software for modern enterprise teams",
        ],
        "sections": [
            ("Our story", "We started as a small workshop and still craft every item by hand."),
            ("Delivery", "Orders placed before noon are shipped the same working day."),
            ("Returns", "You can return any item within thirty days for a full refund."),
        ],
        "announce": "From next month we also deliver on Sundays across the whole city area.",
        "removed_note": "Visit our flagship store in the old town for personal advice.",
        "pivot_title": "AI-powered automation platform for enterprise compliance teams",
        "pivot_desc": "Automate audits, risk reports and compliance workflows with AI agents.",
        "pivot_heads": [
            "AI agents for audit automation",
            "Enterprise-grade risk reporting",
            "Compliance workflows without spreadsheets",
        ],
    },
    "de": {
        "hero": [
            "Langlebige Alltagsbegleiter, direkt zu Ihnen nach Hause geliefert",
            "Premium-Software für moderne Unternehmensteams",
        ],
        "sections": [
            (
                "Unsere Geschichte",
                "Wir begannen als kleine Werkstatt und fertigen bis heute von Hand.",
            ),
            ("Lieferung", "Bestellungen bis zwölf Uhr verlassen noch am selben Werktag das Lager."),
            ("Rückgabe", "Sie können jeden Artikel innerhalb von dreißig Tagen zurückgeben."),
        ],
        "announce": "Ab nächstem Monat liefern wir auch sonntags im gesamten Stadtgebiet aus.",
        "removed_note": "Besuchen Sie unser Stammhaus in der Altstadt für persönliche Beratung.",
        "pivot_title": "KI-gestützte Automatisierungsplattform für Compliance-Teams im Konzern",
        "pivot_desc": "Automatisieren Sie Prüfungen, Risikoberichte und Compliance mit KI-Agenten.",
        "pivot_heads": [
            "KI-Agenten für automatisierte Prüfungen",
            "Risikoberichte für Konzerne",
            "Compliance-Abläufe ohne Tabellen",
        ],
    },
    "fr": {
        "hero": [
            "Des essentiels du quotidien conçus pour durer, livrés chez vous",
            "Un logiciel haut de gamme pour les équipes des grandes entreprises",
        ],
        "sections": [
            (
                "Notre histoire",
                "Nous avons commencé dans un petit atelier et tout est encore fait main.",
            ),
            ("Livraison", "Les commandes passées avant midi partent le jour ouvré même."),
            ("Retours", "Vous pouvez retourner tout article sous trente jours, remboursé."),
        ],
        "announce": "Dès le mois prochain nous livrons aussi le dimanche dans toute la ville.",
        "removed_note": "Rendez-vous dans notre boutique historique de la vieille ville.",
        "pivot_title": "Plateforme d'automatisation par IA pour les équipes conformité",
        "pivot_desc": "Automatisez audits, rapports de risques et conformité avec des agents IA.",
        "pivot_heads": [
            "Des agents IA pour automatiser les audits",
            "Rapports de risques pour grands groupes",
            "La conformité sans tableurs",
        ],
    },
    "es": {
        "hero": [
            "Básicos para el día a día hechos para durar, enviados a tu puerta",
            "Software premium para equipos de grandes empresas",
        ],
        "sections": [
            (
                "Nuestra historia",
                "Empezamos como un pequeño taller y seguimos haciendo todo a mano.",
            ),
            ("Envíos", "Los pedidos realizados antes del mediodía salen el mismo día laborable."),
            ("Devoluciones", "Puedes devolver cualquier artículo en un plazo de treinta días."),
        ],
        "announce": "A partir del mes que viene también repartimos los domingos en toda la ciudad.",
        "removed_note": (
            "Visita nuestra tienda principal en el casco antiguo para recibir asesoramiento."
        ),
        "pivot_title": "Plataforma de automatización con IA para equipos de cumplimiento normativo",
        "pivot_desc": (
            "Automatiza auditorías, informes de riesgos y cumplimiento con agentes de IA."
        ),
        "pivot_heads": [
            "Agentes de IA para auditorías",
            "Informes de riesgos para corporaciones",
            "Cumplimiento sin hojas de cálculo",
        ],
    },
}
CURRENCY = {"USD": ("$", "{sym}{amt}"), "EUR": ("€", "{amt} {sym}"), "GBP": ("£", "{sym}{amt}")}
LOCALE_DECIMAL = {"en": ".", "de": ",", "fr": ",", "es": ","}


# ------------------------------------------------------------------------------- model


@dataclass
class Item:
    name: str
    long_name: str
    sku: str
    price: float


@dataclass
class Content:
    kind: str
    lang: str
    currency: str
    site: str
    title: str
    description: str
    h1: str
    hero: str
    sections: list[tuple[str, str]]
    items: list[Item]
    stories: list[str] = field(default_factory=list)
    note: str | None = None
    structured: str = "json-ld"  # json-ld | microdata | none


def money(content: Content, amount: float) -> str:
    sym, fmt = CURRENCY[content.currency]
    amt = f"{amount:.2f}".replace(".", LOCALE_DECIMAL[content.lang])
    return fmt.format(sym=sym, amt=amt)


# ------------------------------------------------------------------------------- noise


def _cls(rng: random.Random) -> str:
    """A made-up class name, sometimes with a generated hash part that changes per load."""
    word = rng.choice(CLASS_WORDS)
    return f"{word}-{rng.choice(CLASS_WORDS)}"


def _token(rng: random.Random, shape: int) -> str:
    alnum = "abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
    if shape == 0:
        return "req_" + "".join(rng.choice(alnum) for _ in range(12))
    if shape == 1:
        return "-".join("".join(rng.choice(alnum.upper()[:40]) for _ in range(4)) for _ in range(3))
    if shape == 2:
        return "".join(rng.choice("0123456789abcdef") for _ in range(10))
    return "".join(rng.choice(alnum) for _ in range(9))


@dataclass
class Noise:
    """The noise kinds one case's pages carry (fixed per case), drawn per load."""

    kinds: list[str]
    bar_class: str
    box_class: str
    seed: int

    def render(self, content: Content, load: int, place: str) -> str:
        rng = random.Random(self.seed * 1000 + load * 37 + zlib.crc32(place.encode()) % 97)
        ui = UI[content.lang]
        out = []
        if place == "top":
            if "promo_bar" in self.kinds:
                msg = rng.choice(ui["promos"])
                out.append(f'<div class="{self.bar_class}"><p>{escape(msg)}</p></div>')
            if "weather" in self.kinds:
                out.append(
                    f'<div class="wx-{self.box_class}">'
                    f"{escape(ui['weather'].format(n=rng.randint(-2, 24)))}</div>"
                )
        if place == "aside":
            if "recs_rotating" in self.kinds:
                pool = SHOP_ITEMS[content.lang] + DISHES[content.lang]
                picks = rng.sample(pool, 3)
                items = "".join(
                    f'<div class="{self.box_class}-cell"><span>{escape(p)}</span>'
                    f"<b>{money(content, rng.randint(5, 80) + 0.99)}</b></div>"
                    for p in picks
                )
                out.append(
                    f'<aside class="{self.box_class}"><h4>{escape(ui["also"])}</h4>{items}</aside>'
                )
            if "recs_reordered" in self.kinds:
                picks = list(SHOP_ITEMS[content.lang][5:9])
                rng.shuffle(picks)
                out.append(
                    f'<section class="{self.box_class}-picks"><h4>{escape(ui["picks"])}'
                    "</h4><ul>"
                    + "".join(f"<li>{escape(p)}</li>" for p in picks)
                    + "</ul></section>"
                )
            if "most_read" in self.kinds:
                picks = rng.sample(NEWS_TOPICS[content.lang], 3)
                out.append(
                    f'<div class="{self.box_class}-hot"><h4>{escape(ui["popular"])}</h4>'
                    "<ol>" + "".join(f"<li>{escape(p)}</li>" for p in picks) + "</ol></div>"
                )
            if "testimonial" in self.kinds:
                out.append(
                    f'<blockquote class="{self.bar_class}-voice">'
                    f"{escape(rng.choice(ui['quotes']))}</blockquote>"
                )
        if place == "footer":
            if "request_id" in self.kinds:
                out.append(f"<p>ID {_token(rng, self.seed % 4)}</p>")
            if "support_code" in self.kinds:
                code = "".join(rng.choice("ABCDEFGHJKMNPQRSTUVWXYZ23456789") for _ in range(5))
                out.append(f"<p>{escape(ui['support'])}: {code}</p>")
            if "build_label" in self.kinds:
                out.append(
                    f"<p>node eu-{rng.choice(['west', 'north', 'central'])}-"
                    f"{rng.randint(1, 4)}{rng.choice('abc')}</p>"
                )
            if "visitors" in self.kinds:
                out.append(
                    f"<p>{escape(ui['visitors'].format(n=f'{rng.randint(900, 30000):,}'))}</p>"
                )
            if "updated" in self.kinds:
                out.append(f"<p>{escape(ui['updated'].format(n=rng.randint(1, 59)))}</p>")
            if "clock" in self.kinds:
                out.append(f"<p>{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}</p>")
        if place == "item" and "counters" in self.kinds:
            phrase = rng.choice([ui["viewing"], ui["left"], ui["sold"]])
            out.append(
                f'<p class="{self.bar_class}-hint">'
                f"{escape(phrase.format(n=rng.randint(2, 40)))}</p>"
            )
        return "".join(out)

    def wrapper_class(self, load: int) -> str:
        """A generated class name (css-in-js style) that changes with each load."""
        if "hashed_classes" not in self.kinds:
            return "wrap"
        rng = random.Random(self.seed + load * 7919)
        return "css-" + "".join(
            rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(6)
        )

    def tracking(self, load: int) -> str:
        rng = random.Random(self.seed - load)
        return (
            f'<script>window.__t="{_token(rng, 2)}";</script>'
            f'<img src="/px.gif?r={_token(rng, 3)}" width="1" height="1" alt="">'
        )


# ------------------------------------------------------------------------------ render


def _jsonld(content: Content, rng: random.Random) -> str:
    if content.structured != "json-ld" or not content.items:
        return ""
    item_type = "MenuItem" if content.kind == "restaurant" else "Product"
    nodes = []
    for item in content.items:
        node = {
            "@type": item_type,
            "name": item.long_name,
            "sku": item.sku,
            "offers": {
                "@type": "Offer",
                "price": f"{item.price:.2f}",
                "priceCurrency": content.currency,
            },
        }
        keys = list(node.items())
        rng.shuffle(keys)  # key order differs per load
        nodes.append(dict(keys))
    data = {"@context": "https://schema.org", "@graph": nodes}
    return f'<script type="application/ld+json">{json.dumps(data, ensure_ascii=False)}</script>'


def _item_html(content: Content, item: Item, noise: Noise, load: int) -> str:
    hint = noise.render(content, load * 10 + zlib.crc32(item.name.encode()) % 7, "item")
    price = money(content, item.price)
    if content.structured == "microdata":
        return (
            '<div class="tile" itemscope itemtype="https://schema.org/Product">'
            f'<h3 itemprop="name">{escape(item.name)}</h3>'
            f'<meta itemprop="sku" content="{item.sku}">'
            f'<span itemprop="priceCurrency" content="{content.currency}"></span>'
            f'<span itemprop="price" content="{item.price:.2f}">{price}</span>{hint}</div>'
        )
    if content.kind == "restaurant":
        return f"<li><span>{escape(item.name)}</span> <em>{price}</em>{hint}</li>"
    if content.kind == "saas":
        ui = UI[content.lang]
        return (
            f'<div class="col-offer"><h3>{escape(item.name)}</h3>'
            f"<p><strong>{price}</strong> {escape(ui['month'])}</p>{hint}</div>"
        )
    return (
        f'<div class="cell"><a href="/p/{item.sku}"><h3>{escape(item.name)}</h3></a>'
        f"<p>{price}</p>{hint}<p>{escape(UI[content.lang]['add'])}</p></div>"
    )


def render(content: Content, noise: Noise, load: int) -> str:
    rng = random.Random(noise.seed * 31 + load)
    sections = "".join(
        f"<section><h2>{escape(h)}</h2><p>{escape(p)}</p></section>" for h, p in content.sections
    )
    note = f"<p>{escape(content.note)}</p>" if content.note else ""
    if content.kind == "restaurant":
        items = (
            f'<h2>{escape(UI[content.lang]["menu"])}</h2><ul class="carte">'
            + "".join(_item_html(content, i, noise, load) for i in content.items)
            + "</ul>"
        )
    elif content.items:
        items = (
            '<div class="grid">'
            + "".join(_item_html(content, i, noise, load) for i in content.items)
            + "</div>"
        )
    else:
        items = ""
    stories = "".join(
        f'<article><a href="/n/{k}">{escape(s)}</a><p>{escape(s)}.</p></article>'
        for k, s in enumerate(content.stories)
    )
    wrapper = noise.wrapper_class(load)
    return (
        f'<!doctype html><html lang="{content.lang}"><head><meta charset="utf-8">'
        f"<title>{escape(content.title)}</title>"
        f'<meta name="description" content="{escape(content.description)}">'
        f"{_jsonld(content, rng)}{noise.tracking(load)}</head><body>"
        f"{noise.render(content, load, 'top')}"
        f'<header><nav><a href="/">{escape(content.site)}</a> <a href="/cart">'
        f"{escape(UI[content.lang]['cart'])}</a></nav></header>"
        f'<main class="{wrapper}"><div class="intro"><h1>{escape(content.h1)}</h1>'
        f'<p class="lede">{escape(content.hero)}</p></div>{items}{stories}{sections}{note}</main>'
        f"{noise.render(content, load, 'aside')}"
        f"<footer><p>© {escape(content.site)}</p>{noise.render(content, load, 'footer')}"
        "</footer></body></html>"
    )


# ------------------------------------------------------------------------------- cases

NOISE_SETS = [
    ["promo_bar", "request_id", "counters"],
    ["recs_rotating", "updated", "hashed_classes"],
    ["testimonial", "support_code", "recs_reordered", "visitors"],
    ["weather", "most_read", "build_label", "clock"],
    ["promo_bar", "recs_reordered", "request_id", "hashed_classes", "counters"],
    ["testimonial", "recs_rotating", "visitors", "updated", "build_label"],
]


def base_content(kind: str, lang: str, currency: str, rng: random.Random) -> Content:
    copy = COPY[lang]
    if kind == "shop":
        names = rng.sample(SHOP_ITEMS[lang], 4)
        site = rng.choice(["Nordlicht", "Maison Claire", "Casa Verde", "Harbour & Co"])
        items = [
            Item(
                n,
                f"{site} {n} - {rng.choice(['Classic', 'Original', 'Essential'])}",
                f"SKU-{rng.randint(10000, 99999)}",
                rng.randint(12, 120) + 0.9,
            )
            for n in names
        ]
        return Content(
            kind,
            lang,
            currency,
            site,
            f"{site} | {copy['hero'][0]}",
            copy["hero"][0],
            site,
            copy["hero"][0],
            copy["sections"][:2],
            items,
        )
    if kind == "saas":
        site = rng.choice(SAAS_NAMES)
        plans = PLANS[:3]
        base = rng.choice([9, 12, 15, 19])
        items = [
            Item(
                p,
                f"{site} {p} Plan (billed monthly)",
                f"{site.lower()}-{p.lower()}",
                float(base * (2**i) + (i * 5)),
            )
            for i, p in enumerate(plans)
        ]
        return Content(
            kind,
            lang,
            currency,
            site,
            f"{site} pricing | {copy['hero'][1]}",
            copy["hero"][1],
            f"{site}",
            copy["hero"][1],
            copy["sections"][1:3],
            items,
        )
    if kind == "restaurant":
        dishes = rng.sample(DISHES[lang], 5)
        site = rng.choice(["Trattoria Sole", "Zum Anker", "Le Petit Coin", "La Bodega"])
        items = [
            Item(d, f"{d} ({site})", f"dish-{k}", rng.randint(7, 24) + 0.5)
            for k, d in enumerate(dishes)
        ]
        return Content(
            kind,
            lang,
            currency,
            site,
            f"{site} - {UI[lang]['menu']}",
            copy["sections"][0][1],
            site,
            copy["sections"][0][1],
            [],
            items,
        )
    site = rng.choice(["Morning Post", "Tagesblick", "Le Quotidien", "El Diario Local"])
    stories = rng.sample(NEWS_TOPICS[lang], 4)
    return Content(
        kind,
        lang,
        currency,
        site,
        f"{site}",
        f"{site}: {stories[0]}",
        site,
        copy["sections"][0][1],
        [],
        [],
        stories=stories,
        structured="none",
    )


def changed(content: Content, change: str, rng: random.Random) -> tuple[Content, list[dict]]:
    copy = COPY[content.lang]
    if change == "pricing_change":
        items = list(content.items)
        k = rng.randrange(len(items))
        delta = rng.choice([2.0, 5.0, -3.0, 10.0])
        items[k] = replace(items[k], price=round(items[k].price + delta, 2))
        return replace(content, items=items), [
            {
                "type": "pricing_change",
                "product": items[k].name,
                "new_price": f"{items[k].price:.2f}",
            }
        ]
    if change == "product_launch":
        pool = {"shop": SHOP_ITEMS, "restaurant": DISHES}.get(content.kind)
        if pool:
            name = next(n for n in pool[content.lang] if n not in {i.name for i in content.items})
        else:
            name = "Enterprise"
        new = Item(
            name,
            f"{content.site} {name} Edition",
            f"SKU-NEW-{rng.randint(100, 999)}",
            rng.randint(30, 300) + 0.0,
        )
        return replace(content, items=[*content.items, new]), [
            {"type": "product_launch", "product": name}
        ]
    if change == "website_change":
        if content.note is None and rng.random() < 0.7:
            return replace(content, note=copy["announce"]), [{"type": "website_change"}]
        sections = [*content.sections, (copy["sections"][2][0], copy["removed_note"])]
        return replace(content, sections=sections), [{"type": "website_change"}]
    if change == "news_update":
        stories = [
            *content.stories[1:],
            rng.choice([s for s in NEWS_TOPICS[content.lang] if s not in content.stories]),
        ]
        return replace(content, stories=stories), [{"type": "website_change"}]
    if change == "messaging_shift":
        return replace(
            content,
            title=f"{content.site} | {copy['pivot_title']}",
            description=copy["pivot_desc"],
            h1=copy["pivot_title"],
            hero=copy["pivot_desc"],
            sections=[(h, copy["pivot_desc"]) for h in copy["pivot_heads"]],
        ), [{"type": "messaging_shift"}, {"type": "website_change"}]
    raise ValueError(change)


PLAN = [
    # (kind, changes per case, how many cases)
    (
        "shop",
        [
            None,
            None,
            None,
            "pricing_change",
            "product_launch",
            "website_change",
            "messaging_shift",
            "pricing_change@2",
            "product_launch@2",
            None,
            "pricing_change",
            "website_change",
        ],
    ),
    (
        "saas",
        [
            None,
            None,
            "pricing_change",
            "product_launch",
            "website_change",
            "messaging_shift",
            None,
            "pricing_change@2",
            "pricing_change",
            None,
        ],
    ),
    (
        "news",
        [
            None,
            None,
            None,
            "news_update",
            "news_update",
            "messaging_shift",
            None,
            "website_change",
            None,
            "news_update",
        ],
    ),
    (
        "restaurant",
        [
            None,
            None,
            "pricing_change",
            "product_launch",
            "website_change",
            None,
            "pricing_change",
            None,
            "product_launch",
            "website_change",
        ],
    ),
]
LANGS = ["en", "de", "fr", "es"]
CURRENCIES = {"en": ["USD", "GBP"], "de": ["EUR"], "fr": ["EUR"], "es": ["EUR"]}


def generate(out: Path = OUT, seed: int = 17) -> list[dict]:
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    manifest = []
    n = 0
    for kind, changes in PLAN:
        for index, change in enumerate(changes):
            n += 1
            rng = random.Random(seed * 7919 + n)
            lang = LANGS[(n - 1) % len(LANGS)]
            currency = rng.choice(CURRENCIES[lang])
            content = base_content(kind, lang, currency, rng)
            if kind in ("shop", "saas") and index % 3 == 2 and change != "product_launch@2":
                content = replace(content, structured="microdata")
            kinds = list(NOISE_SETS[n % len(NOISE_SETS)])
            if kind == "news" and "most_read" not in kinds:
                kinds.append("most_read")
            noise = Noise(kinds, _cls(rng), _cls(rng), seed + n)
            two_pages = bool(change and change.endswith("@2"))
            change_name = change.split("@")[0] if change else None
            after, labels = (content, [])
            if change_name:
                after, labels = changed(content, change_name, rng)
            case_id = f"{n:02d}-{kind}-{lang}-{change_name or 'noise'}"
            pages = ["home", "catalogue"] if two_pages else ["home"]
            folder = out / case_id
            folder.mkdir()
            for p, page in enumerate(pages):
                page_noise = replace(noise, seed=noise.seed * 3 + p)
                for load, name in enumerate(LOADS):
                    version = content if name.startswith("before") else after
                    html = render(version, page_noise, load)
                    (folder / f"{page}.{name}.html").write_text(html, encoding="utf-8")
            manifest.append(
                {
                    "case": case_id,
                    "kind": kind,
                    "lang": lang,
                    "currency": currency,
                    "pages": pages,
                    "noise": kinds,
                    "expected": labels,
                    "structured": content.structured,
                }
            )
    (out / "manifest.json").write_text(
        json.dumps(manifest, indent=1, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    return manifest


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--seed", type=int, default=17)
    args = ap.parse_args(argv)
    manifest = generate(args.out, args.seed)
    print(f"{len(manifest)} cases written to {args.out}")


if __name__ == "__main__":
    main()
