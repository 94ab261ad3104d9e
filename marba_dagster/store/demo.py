"""Deterministic, realistic demo data for the MARBA tables.

``seed_demo(engine, brands=N, seed=S, now=T)`` writes N brands with everything the seven
jobs read: competitors (pointing at the sandbox's fake websites), connected platform
accounts, ``days`` of published posts with metrics, daily follower counts, scheduled posts
and objectives. ``background_jobs`` is left alone.

Determinism
    Every brand is generated from its own RNG, ``numpy.random.default_rng([seed, index])``,
    plus a few seed-level tables (country rotation, city order). Brand *i* is therefore the
    same whether 20 or 1,000 brands are seeded, and identical (seed, index, now, days) give
    identical rows. ``now`` defaults to the current UTC time rounded down to the hour; pass
    it to pin the output. ``generate_brand`` is public so the sandbox or tests can rebuild a
    brand's rows without a database.

Ids (stable for a seed; ``NNNNN`` = 1-based brand index, zero-padded to 5 digits)
    brand ``brand-{seed}-NNNNN``; competitor ``comp-{seed}-NNNNN-{j}``; platform account
    ``acct-{seed}-NNNNN-{fb|ig|x|gbp}``; post ``post-{seed}-NNNNN-{fb|ig|x}-{k:05d}`` (k in
    publication order per platform); scheduled post ``sched-{seed}-NNNNN-{j:02d}``;
    objective ``obj-{seed}-NNNNN-{j}``. External ids (page/user ids, post ids) are
    realistic-looking numbers drawn from the brand's RNG.

Idempotence
    Seeding skips brands whose id is already present (each chunk of brands is written in
    one transaction, so a present brand is always complete). Seeding again with the same
    seed therefore adds nothing; seeding more brands adds only the new ones. ``replace=True``
    instead deletes those brands (and every row of any table that refers to them) and
    writes them afresh, e.g. to move the data window to a new ``now``.

Guaranteed features (by brand index i, 0-based, so small demos exercise them)
    ``i % 50 == 7`` has no location (city, latitude, longitude null; country, subdivision
    and timezone kept); ``i % 20 == 13`` is inactive; ``i % 25 == 11`` has an expired
    Facebook/first-platform token. Every active brand with an active social account has
    1-2 scheduled posts due (0-10 minutes before ``now``), 2-4 in the future (1 h - 7 d),
    and with probability 1/2 one ``cancelled`` post. Inactive brands get none.

Planted engagement effects (the learning engine should find these)
    Posts exist on facebook, instagram and x (google_business accounts carry reviews, not
    posts). A post's expected engagement rate, engagements / impressions with engagements
    = likes + comments + shares + saves (clicks and video views excluded), is

        INDUSTRY base rate x PLATFORM_ENGAGEMENT_FACTOR x brand factor (lognormal, s=0.25)
        x HOUR_MULTIPLIERS[local hour] x WEEKDAY_MULTIPLIERS[local weekday]
        x FORMAT_MULTIPLIERS[format] x product of HASHTAG_MULTIPLIERS for tags present
        x POWER_WORD_MULTIPLIERS[word] if the post opens with a power phrase
        x lognormal noise (sigma 0.35, mean 1)

    Local means in the brand's timezone. Impressions depend only on the platform follower
    count that day (x reach fraction, lognormal noise) and post age (maturity
    ``1 - exp(-age_h / 12)``), not on the planted factors, so each multiplier is the lift
    on both the engagement rate and the expected engagement count. Peak hour: 19 (x1.8),
    best weekday: Wednesday. Neutral text (sentences, items, CTAs, neutral hashtags, brand
    and city names are never in bodies) contains none of the power words or planted tags.

    Multipliers are relative to the neutral case (hour/weekday factor 1.0, image, no
    planted tag or word). Measured against the mean of all posts the lift is smaller
    because the baseline itself contains boosted posts: over 1,000 brands, hour 19 shows
    about x1.6, #giveaway x1.6, "free" x1.4 against the rest. The format mix differs by
    platform (reels and carousels mostly on instagram, the highest-rate platform), so
    compare formats within a platform, as a per-brand, per-platform learner does.
    Posting volume: facebook 1.1, instagram 1.3, x 1.6 posts a day on average, times a
    per-brand activity factor; local posting hours are mostly 7-22 (PLATFORM_* and
    FORMAT_PROBABILITIES hold the rest).

Writing
    One transaction per chunk of ``chunk_brands`` brands; the next chunk is generated in a
    worker thread meanwhile. On SQLite and PostgreSQL rows go to the driver in one call
    per table and chunk (executemany of pre-converted tuples; COPY), storing exactly what
    Core's ``conn.execute(table.insert(), rows)`` would (``fast=False`` uses that path).

Metrics
    One ``post_metrics`` row per post with ``metric_date`` = ``now``'s UTC date (a lifetime
    snapshot as of today). ``account_metrics`` has one row per brand, social platform and
    UTC day for the ``days`` days ending at ``now``'s date: followers growing about
    0.05-0.25 % a day with a little day-to-day noise.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import re
import sys
import time
import unicodedata
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from . import schema as s
from .types import UTCDateTime

DEFAULT_SITES_BASE_URL = "http://127.0.0.1:8765/sites"
DEFAULT_MEDIA_BASE_URL = "http://127.0.0.1:8765/media"
DEFAULT_CHUNK_BRANDS = 50

# ------------------------------------------------------------------------------- cities

# country -> (default IANA timezone, "city|subdivision|latitude|longitude[|timezone]").
# Subdivision codes are those of the `holidays` package (blank = none: JP, NL, IE, MX and
# metropolitan France outside Alsace-Moselle have no holiday subdivisions there).
_CITIES_RAW: dict[str, tuple[str, str]] = {
    "US": (
        "America/New_York",
        """
New York|NY|40.7128|-74.0060
Los Angeles|CA|34.0522|-118.2437|America/Los_Angeles
Chicago|IL|41.8781|-87.6298|America/Chicago
Houston|TX|29.7604|-95.3698|America/Chicago
Phoenix|AZ|33.4484|-112.0740|America/Phoenix
Philadelphia|PA|39.9526|-75.1652
San Antonio|TX|29.4241|-98.4936|America/Chicago
San Diego|CA|32.7157|-117.1611|America/Los_Angeles
Dallas|TX|32.7767|-96.7970|America/Chicago
San Jose|CA|37.3382|-121.8863|America/Los_Angeles
Austin|TX|30.2672|-97.7431|America/Chicago
Jacksonville|FL|30.3322|-81.6557
Fort Worth|TX|32.7555|-97.3308|America/Chicago
Columbus|OH|39.9612|-82.9988
Charlotte|NC|35.2271|-80.8431
San Francisco|CA|37.7749|-122.4194|America/Los_Angeles
Indianapolis|IN|39.7684|-86.1581|America/Indiana/Indianapolis
Seattle|WA|47.6062|-122.3321|America/Los_Angeles
Denver|CO|39.7392|-104.9903|America/Denver
Washington|DC|38.9072|-77.0369
Boston|MA|42.3601|-71.0589
El Paso|TX|31.7619|-106.4850|America/Denver
Nashville|TN|36.1627|-86.7816|America/Chicago
Detroit|MI|42.3314|-83.0458|America/Detroit
Oklahoma City|OK|35.4676|-97.5164|America/Chicago
Portland|OR|45.5152|-122.6784|America/Los_Angeles
Las Vegas|NV|36.1699|-115.1398|America/Los_Angeles
Memphis|TN|35.1495|-90.0490|America/Chicago
Louisville|KY|38.2527|-85.7585|America/Kentucky/Louisville
Baltimore|MD|39.2904|-76.6122
Milwaukee|WI|43.0389|-87.9065|America/Chicago
Albuquerque|NM|35.0844|-106.6504|America/Denver
Tucson|AZ|32.2226|-110.9747|America/Phoenix
Fresno|CA|36.7378|-119.7871|America/Los_Angeles
Sacramento|CA|38.5816|-121.4944|America/Los_Angeles
Kansas City|MO|39.0997|-94.5786|America/Chicago
Mesa|AZ|33.4152|-111.8315|America/Phoenix
Atlanta|GA|33.7490|-84.3880
Omaha|NE|41.2565|-95.9345|America/Chicago
Colorado Springs|CO|38.8339|-104.8214|America/Denver
Raleigh|NC|35.7796|-78.6382
Miami|FL|25.7617|-80.1918
Oakland|CA|37.8044|-122.2712|America/Los_Angeles
Minneapolis|MN|44.9778|-93.2650|America/Chicago
Tulsa|OK|36.1540|-95.9928|America/Chicago
Cleveland|OH|41.4993|-81.6944
Wichita|KS|37.6872|-97.3301|America/Chicago
New Orleans|LA|29.9511|-90.0715|America/Chicago
Tampa|FL|27.9506|-82.4572
Honolulu|HI|21.3069|-157.8583|Pacific/Honolulu
Anchorage|AK|61.2181|-149.9003|America/Anchorage
Pittsburgh|PA|40.4406|-79.9959
Cincinnati|OH|39.1031|-84.5120
St. Louis|MO|38.6270|-90.1994|America/Chicago
Orlando|FL|28.5383|-81.3792
Salt Lake City|UT|40.7608|-111.8910|America/Denver
Boise|ID|43.6150|-116.2023|America/Boise
Madison|WI|43.0731|-89.4012|America/Chicago
Burlington|VT|44.4759|-73.2121
Portland|ME|43.6591|-70.2568
Providence|RI|41.8240|-71.4128
Hartford|CT|41.7658|-72.6734
Richmond|VA|37.5407|-77.4360
Charleston|SC|32.7765|-79.9311
Savannah|GA|32.0809|-81.0912
Asheville|NC|35.5951|-82.5515
Santa Fe|NM|35.6870|-105.9378|America/Denver
Boulder|CO|40.0150|-105.2705|America/Denver
Spokane|WA|47.6588|-117.4260|America/Los_Angeles
Des Moines|IA|41.5868|-93.6250|America/Chicago
Little Rock|AR|34.7465|-92.2896|America/Chicago
Birmingham|AL|33.5186|-86.8104|America/Chicago
Jackson|MS|32.2988|-90.1848|America/Chicago
Charleston|WV|38.3498|-81.6326
Billings|MT|45.7833|-108.5007|America/Denver
Fargo|ND|46.8772|-96.7898|America/Chicago
Sioux Falls|SD|43.5446|-96.7311|America/Chicago
Cheyenne|WY|41.1400|-104.8202|America/Denver
Newark|NJ|40.7357|-74.1724
Wilmington|DE|39.7391|-75.5398
Manchester|NH|42.9956|-71.4548
Buffalo|NY|42.8864|-78.8784
Ann Arbor|MI|42.2808|-83.7430|America/Detroit
Lexington|KY|38.0406|-84.5037
Reno|NV|39.5296|-119.8138|America/Los_Angeles
Eugene|OR|44.0521|-123.0868|America/Los_Angeles
Santa Barbara|CA|34.4208|-119.6982|America/Los_Angeles
Chattanooga|TN|35.0456|-85.3097
""",
    ),
    "GB": (
        "Europe/London",
        """
London|ENG|51.5074|-0.1278
Manchester|ENG|53.4808|-2.2426
Birmingham|ENG|52.4862|-1.8904
Leeds|ENG|53.8008|-1.5491
Liverpool|ENG|53.4084|-2.9916
Bristol|ENG|51.4545|-2.5879
Sheffield|ENG|53.3811|-1.4701
Newcastle upon Tyne|ENG|54.9783|-1.6178
Nottingham|ENG|52.9548|-1.1581
Leicester|ENG|52.6369|-1.1398
Brighton|ENG|50.8225|-0.1372
Oxford|ENG|51.7520|-1.2577
Cambridge|ENG|52.2053|0.1218
York|ENG|53.9600|-1.0873
Bath|ENG|51.3811|-2.3590
Norwich|ENG|52.6309|1.2974
Exeter|ENG|50.7184|-3.5339
Plymouth|ENG|50.3755|-4.1427
Southampton|ENG|50.9097|-1.4044
Reading|ENG|51.4543|-0.9781
Coventry|ENG|52.4068|-1.5197
Edinburgh|SCT|55.9533|-3.1883
Glasgow|SCT|55.8642|-4.2518
Aberdeen|SCT|57.1497|-2.0943
Dundee|SCT|56.4620|-2.9707
Inverness|SCT|57.4778|-4.2247
Cardiff|WLS|51.4816|-3.1791
Swansea|WLS|51.6214|-3.9436
Belfast|NIR|54.5973|-5.9301
Derry|NIR|54.9966|-7.3086
""",
    ),
    "DE": (
        "Europe/Berlin",
        """
Berlin|BE|52.5200|13.4050
Hamburg|HH|53.5511|9.9937
Munich|BY|48.1351|11.5820
Cologne|NW|50.9375|6.9603
Frankfurt am Main|HE|50.1109|8.6821
Stuttgart|BW|48.7758|9.1829
Düsseldorf|NW|51.2277|6.7735
Dortmund|NW|51.5136|7.4653
Essen|NW|51.4556|7.0116
Leipzig|SN|51.3397|12.3731
Bremen|HB|53.0793|8.8017
Dresden|SN|51.0504|13.7373
Hanover|NI|52.3759|9.7320
Nuremberg|BY|49.4521|11.0767
Duisburg|NW|51.4344|6.7623
Bochum|NW|51.4818|7.2162
Bonn|NW|50.7374|7.0982
Münster|NW|51.9607|7.6261
Karlsruhe|BW|49.0069|8.4037
Mannheim|BW|49.4875|8.4660
Augsburg|BY|48.3705|10.8978
Wiesbaden|HE|50.0782|8.2398
Freiburg im Breisgau|BW|47.9990|7.8421
Heidelberg|BW|49.3988|8.6724
Kiel|SH|54.3233|10.1228
Lübeck|SH|53.8655|10.6866
Rostock|MV|54.0924|12.0991
Potsdam|BB|52.3906|13.0645
Mainz|RP|49.9929|8.2473
Saarbrücken|SL|49.2402|6.9969
Erfurt|TH|50.9848|11.0299
Magdeburg|ST|52.1205|11.6276
Regensburg|BY|49.0134|12.1016
""",
    ),
    "FR": (
        "Europe/Paris",
        """
Paris||48.8566|2.3522
Marseille||43.2965|5.3698
Lyon||45.7640|4.8357
Toulouse||43.6047|1.4442
Nice||43.7102|7.2620
Nantes||47.2184|-1.5536
Montpellier||43.6108|3.8767
Strasbourg|6AE|48.5734|7.7521
Bordeaux||44.8378|-0.5792
Lille||50.6292|3.0573
Rennes||48.1173|-1.6778
Reims||49.2583|4.0317
Toulon||43.1242|5.9280
Grenoble||45.1885|5.7245
Dijon||47.3220|5.0415
Angers||47.4784|-0.5632
Nîmes||43.8367|4.3601
Aix-en-Provence||43.5297|5.4474
Brest||48.3904|-4.4861
Le Havre||49.4944|0.1079
Tours||47.3941|0.6848
Limoges||45.8336|1.2611
Clermont-Ferrand||45.7772|3.0870
Annecy||45.8992|6.1294
Metz|57|49.1193|6.1757
Mulhouse|6AE|47.7508|7.3359
Colmar|6AE|48.0794|7.3585
Saint-Denis|974|-20.8823|55.4504|Indian/Reunion
Fort-de-France|972|14.6161|-61.0588|America/Martinique
""",
    ),
    "AU": (
        "Australia/Sydney",
        """
Sydney|NSW|-33.8688|151.2093
Melbourne|VIC|-37.8136|144.9631|Australia/Melbourne
Brisbane|QLD|-27.4698|153.0251|Australia/Brisbane
Perth|WA|-31.9505|115.8605|Australia/Perth
Adelaide|SA|-34.9285|138.6007|Australia/Adelaide
Gold Coast|QLD|-28.0167|153.4000|Australia/Brisbane
Newcastle|NSW|-32.9283|151.7817
Canberra|ACT|-35.2809|149.1300
Hobart|TAS|-42.8821|147.3272|Australia/Hobart
Darwin|NT|-12.4634|130.8456|Australia/Darwin
Wollongong|NSW|-34.4278|150.8931
Geelong|VIC|-38.1499|144.3617|Australia/Melbourne
Townsville|QLD|-19.2590|146.8169|Australia/Brisbane
Cairns|QLD|-16.9186|145.7781|Australia/Brisbane
Ballarat|VIC|-37.5622|143.8503|Australia/Melbourne
Bendigo|VIC|-36.7570|144.2794|Australia/Melbourne
Launceston|TAS|-41.4332|147.1441|Australia/Hobart
Toowoomba|QLD|-27.5598|151.9507|Australia/Brisbane
Byron Bay|NSW|-28.6474|153.6020
Alice Springs|NT|-23.6980|133.8807|Australia/Darwin
Fremantle|WA|-32.0569|115.7439|Australia/Perth
""",
    ),
    "CA": (
        "America/Toronto",
        """
Toronto|ON|43.6532|-79.3832
Montreal|QC|45.5017|-73.5673
Vancouver|BC|49.2827|-123.1207|America/Vancouver
Calgary|AB|51.0447|-114.0719|America/Edmonton
Edmonton|AB|53.5461|-113.4938|America/Edmonton
Ottawa|ON|45.4215|-75.6972
Winnipeg|MB|49.8951|-97.1384|America/Winnipeg
Quebec City|QC|46.8139|-71.2080
Hamilton|ON|43.2557|-79.8711
Kitchener|ON|43.4516|-80.4925
London|ON|42.9849|-81.2453
Victoria|BC|48.4284|-123.3656|America/Vancouver
Halifax|NS|44.6488|-63.5752|America/Halifax
Saskatoon|SK|52.1332|-106.6700|America/Regina
Regina|SK|50.4452|-104.6189|America/Regina
St. John's|NL|47.5615|-52.7126|America/St_Johns
Kelowna|BC|49.8880|-119.4960|America/Vancouver
Windsor|ON|42.3149|-83.0364
Fredericton|NB|45.9636|-66.6431|America/Moncton
Moncton|NB|46.0878|-64.7782|America/Moncton
Charlottetown|PE|46.2382|-63.1311|America/Halifax
Whitehorse|YT|60.7212|-135.0568|America/Whitehorse
Yellowknife|NT|62.4540|-114.3718|America/Yellowknife
""",
    ),
    "JP": (
        "Asia/Tokyo",
        """
Tokyo||35.6762|139.6503
Yokohama||35.4437|139.6380
Osaka||34.6937|135.5023
Nagoya||35.1815|136.9066
Sapporo||43.0618|141.3545
Fukuoka||33.5904|130.4017
Kobe||34.6901|135.1955
Kyoto||35.0116|135.7681
Kawasaki||35.5308|139.7029
Saitama||35.8617|139.6455
Hiroshima||34.3853|132.4553
Sendai||38.2682|140.8694
Chiba||35.6074|140.1065
Kitakyushu||33.8834|130.8752
Niigata||37.9162|139.0364
Hamamatsu||34.7108|137.7261
Kumamoto||32.8031|130.7079
Okayama||34.6551|133.9195
Kanazawa||36.5613|136.6562
Naha||26.2124|127.6809
Nara||34.6851|135.8048
Matsuyama||33.8392|132.7657
""",
    ),
    "BR": (
        "America/Sao_Paulo",
        """
São Paulo|SP|-23.5505|-46.6333
Rio de Janeiro|RJ|-22.9068|-43.1729
Brasília|DF|-15.7939|-47.8828
Salvador|BA|-12.9777|-38.5016|America/Bahia
Fortaleza|CE|-3.7319|-38.5267|America/Fortaleza
Belo Horizonte|MG|-19.9167|-43.9345
Manaus|AM|-3.1190|-60.0217|America/Manaus
Curitiba|PR|-25.4284|-49.2733
Recife|PE|-8.0476|-34.8770|America/Recife
Porto Alegre|RS|-30.0346|-51.2177
Belém|PA|-1.4558|-48.4902|America/Belem
Goiânia|GO|-16.6869|-49.2648
Campinas|SP|-22.9099|-47.0626
São Luís|MA|-2.5307|-44.3068|America/Fortaleza
Maceió|AL|-9.6658|-35.7353|America/Maceio
Natal|RN|-5.7945|-35.2110|America/Fortaleza
Florianópolis|SC|-27.5954|-48.5480
Vitória|ES|-20.3155|-40.3128
João Pessoa|PB|-7.1195|-34.8450|America/Fortaleza
Campo Grande|MS|-20.4697|-54.6201|America/Campo_Grande
Cuiabá|MT|-15.6014|-56.0979|America/Cuiaba
Teresina|PI|-5.0892|-42.8019|America/Fortaleza
Aracaju|SE|-10.9472|-37.0731|America/Maceio
Porto Velho|RO|-8.7612|-63.9004|America/Porto_Velho
""",
    ),
    "NO": (
        "Europe/Oslo",
        """
Oslo|03|59.9139|10.7522
Bergen|46|60.3913|5.3221
Trondheim|50|63.4305|10.3951
Stavanger|11|58.9700|5.7331
Drammen|33|59.7439|10.2045
Fredrikstad|31|59.2181|10.9298
Kristiansand|42|58.1599|8.0182
Sandnes|11|58.8524|5.7352
Tromsø|55|69.6492|18.9553
Ålesund|15|62.4722|6.1495
Bodø|18|67.2804|14.4049
Lillehammer|34|61.1153|10.4662
Tønsberg|39|59.2676|10.4076
Skien|40|59.2096|9.6090
Alta|56|69.9689|23.2716
Lillestrøm|32|59.9560|11.0492
Hamar|34|60.7945|11.0680
Longyearbyen|21|78.2232|15.6267|Arctic/Longyearbyen
""",
    ),
    "IN": (
        "Asia/Kolkata",
        """
Mumbai|MH|19.0760|72.8777
Delhi|DL|28.7041|77.1025
Bengaluru|KA|12.9716|77.5946
Hyderabad|TS|17.3850|78.4867
Ahmedabad|GJ|23.0225|72.5714
Chennai|TN|13.0827|80.2707
Kolkata|WB|22.5726|88.3639
Pune|MH|18.5204|73.8567
Jaipur|RJ|26.9124|75.7873
Lucknow|UP|26.8467|80.9462
Kanpur|UP|26.4499|80.3319
Nagpur|MH|21.1458|79.0882
Indore|MP|22.7196|75.8577
Bhopal|MP|23.2599|77.4126
Patna|BR|25.5941|85.1376
Vadodara|GJ|22.3072|73.1812
Surat|GJ|21.1702|72.8311
Kochi|KL|9.9312|76.2673
Thiruvananthapuram|KL|8.5241|76.9366
Chandigarh|CH|30.7333|76.7794
Guwahati|AS|26.1445|91.7362
Bhubaneswar|OD|20.2961|85.8245
Visakhapatnam|AP|17.6868|83.2185
Coimbatore|TN|11.0168|76.9558
Mysuru|KA|12.2958|76.6394
Panaji|GA|15.4909|73.8278
Dehradun|UK|30.3165|78.0322
Amritsar|PB|31.6340|74.8723
""",
    ),
    "ES": (
        "Europe/Madrid",
        """
Madrid|MD|40.4168|-3.7038
Barcelona|CT|41.3851|2.1734
Valencia|VC|39.4699|-0.3763
Seville|AN|37.3891|-5.9845
Bilbao|PV|43.2630|-2.9350
Málaga|AN|36.7213|-4.4214
Zaragoza|AR|41.6488|-0.8891
Palma|IB|39.5696|2.6502
Las Palmas de Gran Canaria|CN|28.1235|-15.4363|Atlantic/Canary
""",
    ),
    "IT": (
        "Europe/Rome",
        """
Rome|RM|41.9028|12.4964
Milan|MI|45.4642|9.1900
Naples|NA|40.8518|14.2681
Turin|TO|45.0703|7.6869
Florence|FI|43.7696|11.2558
Bologna|BO|44.4949|11.3426
Venice|VE|45.4408|12.3155
Genoa|GE|44.4056|8.9463
Palermo|PA|38.1157|13.3615
""",
    ),
    "NL": (
        "Europe/Amsterdam",
        """
Amsterdam||52.3676|4.9041
Rotterdam||51.9244|4.4777
Utrecht||52.0907|5.1214
The Hague||52.0705|4.3007
Eindhoven||51.4416|5.4697
Groningen||53.2194|6.5665
""",
    ),
    "NZ": (
        "Pacific/Auckland",
        """
Auckland|AUK|-36.8485|174.7633
Wellington|WGN|-41.2865|174.7762
Christchurch|CAN|-43.5321|172.6362
Dunedin|OTA|-45.8788|170.5028
Hamilton|WKO|-37.7870|175.2793
Queenstown|OTA|-45.0312|168.6626
""",
    ),
    "IE": (
        "Europe/Dublin",
        """
Dublin||53.3498|-6.2603
Cork||51.8985|-8.4756
Galway||53.2707|-9.0568
Limerick||52.6638|-8.6267
""",
    ),
    "MX": (
        "America/Mexico_City",
        """
Mexico City||19.4326|-99.1332
Guadalajara||20.6597|-103.3496
Monterrey||25.6866|-100.3161|America/Monterrey
Cancún||21.1619|-86.8515|America/Cancun
Tijuana||32.5149|-117.0382|America/Tijuana
Puebla||19.0414|-98.2063
""",
    ),
}


@dataclass(frozen=True)
class DemoCity:
    name: str
    country_code: str
    subdivision: str | None
    latitude: float
    longitude: float
    timezone: str


def _parse_cities() -> tuple[DemoCity, ...]:
    out = []
    for cc, (default_tz, text) in _CITIES_RAW.items():
        for line in text.strip().splitlines():
            parts = line.split("|")
            name, sub, lat, lon = parts[:4]
            tz = parts[4] if len(parts) > 4 else default_tz
            out.append(DemoCity(name, cc, sub or None, float(lat), float(lon), tz))
    return tuple(out)


DEMO_CITIES: tuple[DemoCity, ...] = _parse_cities()
DEMO_COUNTRIES: tuple[str, ...] = tuple(_CITIES_RAW)
_CITIES_BY_COUNTRY: dict[str, tuple[DemoCity, ...]] = {
    cc: tuple(c for c in DEMO_CITIES if c.country_code == cc) for cc in DEMO_COUNTRIES
}
# How often each country comes up in the brand rotation (slots per cycle).
COUNTRY_WEIGHTS: dict[str, int] = {
    "US": 5, "GB": 2, "DE": 2, "FR": 2, "AU": 2, "CA": 2, "IN": 2, "JP": 1, "BR": 1,
    "NO": 1, "ES": 1, "IT": 1, "NL": 1, "NZ": 1, "IE": 1, "MX": 1,
}  # fmt: skip

_SURNAMES: dict[str, tuple[str, ...]] = {
    "EN": ("Miller", "Hughes", "Carter", "Bennett", "Foster", "Hayes", "Walsh", "Porter",
           "Reed", "Sullivan", "Brooks", "Fletcher", "Hart", "Morgan", "Ellis", "Quinn"),
    "DE": ("Schneider", "Fischer", "Weber", "Becker", "Hoffmann", "Koch", "Richter", "Wolf"),
    "FR": ("Dubois", "Lefèvre", "Moreau", "Laurent", "Fontaine", "Girard", "Bonnet", "Roux"),
    "JP": ("Tanaka", "Suzuki", "Sato", "Yamamoto", "Kobayashi", "Nakamura", "Ito", "Kato"),
    "PT": ("Silva", "Santos", "Oliveira", "Costa", "Almeida", "Ferreira", "Rocha", "Lima"),
    "NO": ("Hansen", "Johansen", "Olsen", "Larsen", "Berg", "Haugen", "Dahl", "Lund"),
    "IN": ("Sharma", "Patel", "Iyer", "Reddy", "Kapoor", "Mehta", "Nair", "Gupta"),
    "ES": ("García", "Romero", "Navarro", "Torres", "Ruiz", "Molina", "Ortega", "Vargas"),
    "IT": ("Rossi", "Bianchi", "Romano", "Ricci", "Marino", "Greco", "Conti", "Gallo"),
    "NL": ("de Vries", "Jansen", "Bakker", "Visser", "Smit", "Meijer", "de Boer", "Mulder"),
}  # fmt: skip
_SURNAME_GROUP = {"DE": "DE", "FR": "FR", "JP": "JP", "BR": "PT", "NO": "NO", "IN": "IN",
                  "ES": "ES", "MX": "ES", "IT": "IT", "NL": "NL"}  # fmt: skip

# Evocative name prefixes; none contains a planted power word.
_NAME_PREFIXES = (
    "Blue Door", "Copper Kettle", "Little Owl", "Northside", "Golden Hour", "Maple & Oak",
    "Harbor", "Wild Fern", "Juniper", "Stone Mill", "Red Fox", "Silver Birch", "Lantern",
    "Driftwood", "Ember", "Sunday", "Wildflower", "Parkside", "Cedar", "Fable", "Honeycomb",
    "Kestrel", "Lighthouse", "Mosaic", "Oakwood", "Pepper Tree", "Riverside", "Saffron",
    "Tidewater", "Urban Grove", "Willow", "Zephyr", "Bluebird", "Brick Lane", "Common Ground",
    "Half Moon", "High Street", "Iron Gate", "Kindred", "Meadow", "Nimbus", "Orchard",
    "Pinecone", "Quarry", "Rosemary", "Second Act", "True North", "Velvet", "Westend",
    "Yellow House", "Foxglove", "Marigold", "Anchor", "Granite", "Hollow Tree", "Lucky Dog",
)  # fmt: skip

# ---------------------------------------------------------------------------- industries


@dataclass(frozen=True)
class IndustryProfile:
    name: str
    weight: float  # relative frequency among demo brands
    base_engagement_rate: float  # engagements / impressions for an image post, average slot
    local: bool  # a storefront: almost always has a Google Business profile
    suffixes: tuple[str, ...]
    items: tuple[str, ...]
    sentences: tuple[str, ...]  # "{item}" is replaced by one of `items`
    hashtags: tuple[str, ...]  # neutral hashtags (no planted effect)
    keywords: tuple[str, ...]


def _ind(name, weight, rate, local, suffixes, items, sentences, hashtags, keywords):
    return IndustryProfile(
        name, weight, rate, local, tuple(suffixes), tuple(items), tuple(sentences),
        tuple(hashtags), tuple(keywords),
    )  # fmt: skip


INDUSTRIES: dict[str, IndustryProfile] = {
    p.name: p
    for p in (
        _ind(
            "coffee shop",
            1.4,
            0.018,
            True,
            ["Coffee", "Coffee Roasters", "Espresso Bar", "Café", "Coffee House"],
            [
                "oat milk latte",
                "cold brew",
                "single-origin pour-over",
                "cardamom bun",
                "flat white",
                "maple cortado",
                "house espresso blend",
                "iced mocha",
            ],
            [
                "Our {item} is the best way to start the morning.",
                "A fresh batch of {item} just came out of the back.",
                "Meet the {item} everyone keeps asking about.",
                "Rainy day? Our {item} fixes that.",
                "Barista pick this week: the {item}.",
            ],
            [
                "#coffee",
                "#coffeetime",
                "#latteart",
                "#espresso",
                "#coffeelover",
                "#morningbrew",
                "#specialtycoffee",
                "#smallbusiness",
            ],
            [
                "coffee",
                "espresso",
                "latte",
                "cold brew",
                "specialty coffee",
                "pour over",
                "coffee beans",
                "café",
            ],
        ),
        _ind(
            "bakery",
            1.2,
            0.02,
            True,
            ["Bakery", "Bakehouse", "Patisserie", "Bread Co."],
            [
                "sourdough loaf",
                "almond croissant",
                "cinnamon roll",
                "rye bread",
                "lemon tart",
                "pain au chocolat",
                "rosemary focaccia",
                "carrot cake",
            ],
            [
                "The {item} is out of the oven and still warm.",
                "Up at 4am so your {item} is ready by 7.",
                "Weekend plans: coffee and our {item}.",
                "Baked in small batches every morning: the {item}.",
                "Our bakers are proud of this {item}.",
            ],
            [
                "#bakery",
                "#sourdough",
                "#freshbread",
                "#pastry",
                "#bakedgoods",
                "#croissant",
                "#smallbusiness",
            ],
            ["bakery", "sourdough", "bread", "pastries", "croissant", "cakes", "artisan bread"],
        ),
        _ind(
            "restaurant",
            1.5,
            0.014,
            True,
            ["Kitchen", "Bistro", "Trattoria", "Grill", "Eatery", "Table"],
            [
                "wood-fired pizza",
                "handmade pasta",
                "seasonal tasting menu",
                "smash burger",
                "grilled octopus",
                "Sunday roast",
                "mushroom risotto",
                "tiramisu",
            ],
            [
                "Tonight in the kitchen: {item}.",
                "Our chef's take on the {item} is back on the menu.",
                "Date night sorted with our {item}.",
                "The {item} that keeps our regulars coming back.",
                "Book a table and save room for the {item}.",
            ],
            [
                "#foodie",
                "#dinnertime",
                "#eatlocal",
                "#chefspecial",
                "#brunch",
                "#foodlover",
                "#smallbusiness",
            ],
            ["restaurant", "dinner", "brunch", "takeout", "chef", "tasting menu", "reservations"],
        ),
        _ind(
            "fitness studio",
            1.0,
            0.016,
            True,
            ["Fitness", "Strength Studio", "Athletic Club", "Training Co.", "Gym"],
            [
                "HIIT class",
                "spin session",
                "kettlebell workshop",
                "mobility flow",
                "6am bootcamp",
                "strength program",
                "boxing class",
                "rowing intervals",
            ],
            [
                "Our {item} will leave you smiling (and sweating).",
                "Coach's favourite this week: the {item}.",
                "Consistency beats intensity. See you at the {item}.",
                "The {item} is filling up fast.",
                "Stronger every week with our {item}.",
            ],
            [
                "#fitness",
                "#workout",
                "#fitfam",
                "#strengthtraining",
                "#hiit",
                "#gymlife",
                "#smallbusiness",
            ],
            [
                "gym",
                "fitness classes",
                "personal training",
                "HIIT",
                "strength training",
                "spin class",
            ],
        ),
        _ind(
            "fashion retail",
            1.0,
            0.012,
            False,
            ["Boutique", "Studio", "Apparel", "Collective", "& Co."],
            [
                "linen shirt",
                "wool overcoat",
                "denim jacket",
                "summer dress",
                "leather boots",
                "knit sweater",
                "tailored trousers",
                "silk scarf",
            ],
            [
                "The {item} you'll wear all season.",
                "Styled three ways: the {item}.",
                "Made to last: our {item}.",
                "Restocked in every size: the {item}.",
                "Our team's favourite piece right now is the {item}.",
            ],
            [
                "#ootd",
                "#fashion",
                "#style",
                "#outfitinspo",
                "#sustainablefashion",
                "#wardrobe",
                "#smallbusiness",
            ],
            ["fashion", "clothing", "boutique", "outfits", "sustainable fashion", "apparel"],
        ),
        _ind(
            "outdoor gear",
            0.7,
            0.013,
            False,
            ["Outfitters", "Outdoor Co.", "Gear Supply", "Mountain Works", "Trail Co."],
            [
                "ultralight tent",
                "rain shell",
                "trail runners",
                "down jacket",
                "hiking pack",
                "camp stove",
                "trekking poles",
                "sleeping bag",
            ],
            [
                "Field-tested on the ridge: the {item}.",
                "Pack light, go far with the {item}.",
                "Weatherproof and ready for the weekend: our {item}.",
                "Staff trip report featuring the {item}.",
                "Built for long days outside: the {item}.",
            ],
            [
                "#outdoors",
                "#hiking",
                "#camping",
                "#getoutside",
                "#trailrunning",
                "#adventure",
                "#smallbusiness",
            ],
            ["outdoor gear", "hiking", "camping", "tents", "rain jacket", "trail running"],
        ),
        _ind(
            "beauty salon",
            1.0,
            0.019,
            True,
            ["Salon", "Hair Studio", "Beauty Bar", "Beauty Lounge"],
            [
                "balayage",
                "keratin treatment",
                "gel manicure",
                "brow lamination",
                "hydrating facial",
                "bridal updo",
                "lash lift",
                "blowout",
            ],
            [
                "Before and after: a soft {item}.",
                "Treat yourself to our {item}.",
                "Our stylists love this {item}.",
                "Self-care Sunday starts with a {item}.",
                "Glowing results from today's {item}.",
            ],
            [
                "#hair",
                "#beauty",
                "#balayage",
                "#nails",
                "#selfcare",
                "#salonlife",
                "#smallbusiness",
            ],
            ["hair salon", "balayage", "manicure", "facial", "beauty treatments", "blowout"],
        ),
        _ind(
            "ice cream",
            0.7,
            0.022,
            True,
            ["Creamery", "Gelato", "Ice Cream Parlour", "Scoops"],
            [
                "salted caramel scoop",
                "pistachio gelato",
                "mango sorbet",
                "waffle cone",
                "brown butter pecan",
                "affogato",
                "strawberry swirl",
                "vegan chocolate scoop",
            ],
            [
                "Churned this morning: {item}.",
                "Sunshine calls for our {item}.",
                "The {item} is flying out of the freezer.",
                "Double scoop kind of day with the {item}.",
                "Made in house with local milk: the {item}.",
            ],
            [
                "#icecream",
                "#gelato",
                "#summervibes",
                "#dessert",
                "#sweettooth",
                "#scoops",
                "#smallbusiness",
            ],
            ["ice cream", "gelato", "dessert", "sorbet", "sundae", "waffle cone"],
        ),
        _ind(
            "home services",
            0.8,
            0.007,
            True,
            ["Plumbing", "Home Services", "Electric", "Handyman Co.", "Roofing"],
            [
                "boiler service",
                "drain cleaning",
                "panel upgrade",
                "gutter clean-out",
                "water heater install",
                "roof inspection",
                "leak repair",
                "smart thermostat install",
            ],
            [
                "Winter is coming: book your {item} now.",
                "Another happy customer after today's {item}.",
                "Quick tip from our techs about the {item}.",
                "Licensed, insured and on time for every {item}.",
                "Done right the first time: {item}.",
            ],
            [
                "#homeimprovement",
                "#plumbing",
                "#diy",
                "#homemaintenance",
                "#contractor",
                "#homeowner",
                "#smallbusiness",
            ],
            ["plumber", "electrician", "home repair", "handyman", "roof repair", "water heater"],
        ),
        _ind(
            "bookstore",
            0.7,
            0.015,
            True,
            ["Books", "Bookshop", "Book Exchange", "Reading Room"],
            [
                "staff pick novel",
                "signed first edition",
                "poetry collection",
                "picture book",
                "mystery paperback",
                "cookbook",
                "graphic novel",
                "travel guide",
            ],
            [
                "On the staff shelf this week: a {item}.",
                "Curl up with this {item}.",
                "Our book club is talking about a {item}.",
                "Just unboxed: a {item} we can't stop reading.",
                "Gift idea: a {item}, wrapped by us.",
            ],
            [
                "#bookstagram",
                "#books",
                "#amreading",
                "#booklover",
                "#indiebookstore",
                "#booktok",
                "#smallbusiness",
            ],
            ["bookstore", "books", "novels", "author events", "book club", "reading"],
        ),
        _ind(
            "florist",
            0.7,
            0.02,
            True,
            ["Flowers", "Florist", "Floral Studio", "Blooms"],
            [
                "peony bouquet",
                "dried flower wreath",
                "tulip bunch",
                "wedding centrepiece",
                "rose arrangement",
                "potted orchid",
                "wildflower posy",
                "sunflower bundle",
            ],
            [
                "Fresh from the market: {item}.",
                "Say it with a {item}.",
                "Arranged this morning: our {item}.",
                "Same-day delivery on the {item}.",
                "Bring the garden indoors with a {item}.",
            ],
            [
                "#flowers",
                "#florist",
                "#bouquet",
                "#floraldesign",
                "#flowerstagram",
                "#peonies",
                "#smallbusiness",
            ],
            ["florist", "flowers", "bouquets", "flower delivery", "wedding flowers"],
        ),
        _ind(
            "pet store",
            0.7,
            0.024,
            True,
            ["Pet Supply", "Pets", "Pet Co.", "Paws & Co."],
            [
                "senior dog kibble",
                "rope toy",
                "cat tree",
                "dog harness",
                "salmon treats",
                "aquarium starter kit",
                "cozy pet bed",
                "puppy training pads",
            ],
            [
                "Shop dog approved: the {item}.",
                "Your best friend deserves the {item}.",
                "Tail wags guaranteed with our {item}.",
                "Meet our customer of the week and the {item}.",
                "Stocked up on the {item} for you.",
            ],
            [
                "#dogsofinstagram",
                "#catsofinstagram",
                "#petlover",
                "#pets",
                "#dogmom",
                "#adoptdontshop",
                "#smallbusiness",
            ],
            ["pet store", "dog food", "cat toys", "pet supplies", "grooming"],
        ),
        _ind(
            "yoga studio",
            0.6,
            0.018,
            True,
            ["Yoga", "Yoga Studio", "Yoga House"],
            [
                "vinyasa flow",
                "yin class",
                "sunrise yoga",
                "prenatal yoga",
                "breathwork session",
                "hot yoga class",
                "restorative flow",
                "beginner series",
            ],
            [
                "Breathe in, slow down: {item}.",
                "Roll out your mat for the {item}.",
                "Our teachers love leading the {item}.",
                "Find your balance at the {item}.",
                "Calm mind, strong body: the {item}.",
            ],
            [
                "#yoga",
                "#yogalife",
                "#mindfulness",
                "#namaste",
                "#yogapractice",
                "#wellness",
                "#smallbusiness",
            ],
            ["yoga", "yoga classes", "meditation", "vinyasa", "mindfulness"],
        ),
        _ind(
            "craft brewery",
            0.6,
            0.016,
            True,
            ["Brewing", "Brewing Co.", "Taproom", "Brewery"],
            [
                "hazy IPA",
                "crisp pilsner",
                "barrel-aged stout",
                "raspberry sour",
                "seasonal lager",
                "brown ale",
                "session pale ale",
                "smoked porter",
            ],
            [
                "On tap today: {item}.",
                "Brewed here and poured fresh: the {item}.",
                "Taproom pick of the week is the {item}.",
                "Cheers to the weekend with a {item}.",
                "Canned this morning: {item}.",
            ],
            [
                "#craftbeer",
                "#beer",
                "#brewery",
                "#ipa",
                "#taproom",
                "#drinklocal",
                "#smallbusiness",
            ],
            ["craft beer", "brewery", "taproom", "IPA", "beer tasting"],
        ),
        _ind(
            "barbershop",
            0.5,
            0.017,
            True,
            ["Barbers", "Barbershop", "Cuts & Co."],
            [
                "skin fade",
                "beard trim",
                "hot towel shave",
                "classic cut",
                "buzz cut",
                "kids' cut",
                "line-up",
                "scissor cut",
            ],
            [
                "Fresh {item} for the weekend.",
                "Sharp lines, clean {item}.",
                "Walk-ins welcome for a {item}.",
                "The chair is ready for your {item}.",
                "Looking good after a {item}.",
            ],
            [
                "#barber",
                "#barbershop",
                "#fade",
                "#menshair",
                "#grooming",
                "#haircut",
                "#smallbusiness",
            ],
            ["barber", "haircut", "fade", "beard trim", "shave"],
        ),
        _ind(
            "bike shop",
            0.4,
            0.014,
            True,
            ["Cycles", "Bike Shop", "Bicycle Co."],
            [
                "gravel bike",
                "spring tune-up",
                "e-bike",
                "tubeless setup",
                "road bike fitting",
                "commuter bike",
                "wheel truing",
                "kids' balance bike",
            ],
            [
                "In the workshop today: a {item}.",
                "Ride further with a {item}.",
                "Our mechanics recommend a {item} before the season.",
                "Test ride the {item} this weekend.",
                "Rolling out the door: a {item}.",
            ],
            [
                "#cycling",
                "#bikeshop",
                "#gravelbike",
                "#bikelife",
                "#ebike",
                "#ridelocal",
                "#smallbusiness",
            ],
            ["bike shop", "bicycles", "bike repair", "e-bikes", "cycling"],
        ),
        _ind(
            "toy store",
            0.4,
            0.02,
            True,
            ["Toys", "Toy Shop", "Games & Toys"],
            [
                "wooden train set",
                "family board game",
                "1000-piece puzzle",
                "plush bear",
                "science kit",
                "building blocks",
                "art supplies set",
                "kite",
            ],
            [
                "Playtime hero of the week: the {item}.",
                "Rainy afternoon sorted with a {item}.",
                "Our staff tested the {item} (for science).",
                "Birthday gift idea: a {item}.",
                "Back in stock: the {item}.",
            ],
            [
                "#toys",
                "#toystore",
                "#boardgames",
                "#playtime",
                "#kidsactivities",
                "#giftideas",
                "#smallbusiness",
            ],
            ["toy store", "toys", "board games", "puzzles", "kids gifts"],
        ),
        _ind(
            "jewelry",
            0.4,
            0.014,
            False,
            ["Jewelry", "Goldsmiths", "Jewellers"],
            [
                "gold hoop earrings",
                "engagement ring",
                "pearl necklace",
                "silver cuff",
                "birthstone pendant",
                "stacking rings",
                "tennis bracelet",
                "signet ring",
            ],
            [
                "Handcrafted in our studio: the {item}.",
                "Everyday sparkle with our {item}.",
                "The {item} our customers keep coming back for.",
                "Gift-wrapped and ready: the {item}.",
                "Details that last a lifetime: our {item}.",
            ],
            [
                "#jewelry",
                "#handmadejewelry",
                "#goldjewelry",
                "#rings",
                "#necklace",
                "#jewelrydesign",
                "#smallbusiness",
            ],
            ["jewelry", "rings", "necklaces", "engagement rings", "handmade jewelry"],
        ),
        _ind(
            "wine bar",
            0.4,
            0.016,
            True,
            ["Wine Bar", "Cellar", "Wine Co."],
            [
                "orange wine",
                "Pinot Noir",
                "tasting flight",
                "cheese board",
                "Riesling",
                "natural wine",
                "sparkling rosé",
                "Tempranillo",
            ],
            [
                "Uncorked tonight: {item}.",
                "Our sommelier's pick is the {item}.",
                "Slow evenings and a {item}.",
                "Pairing of the week: the {item}.",
                "Pour of the day: {item}.",
            ],
            [
                "#wine",
                "#winebar",
                "#winelover",
                "#naturalwine",
                "#sommelier",
                "#winetime",
                "#smallbusiness",
            ],
            ["wine bar", "wine tasting", "natural wine", "sommelier", "cheese board"],
        ),
    )
}
INDUSTRY_NAMES: tuple[str, ...] = tuple(INDUSTRIES)

# Shared call-to-action sentences (none contains a power word).
_CTAS = (
    "Stop by today.", "See you soon!", "Link in bio.", "Tap the link to order.",
    "Book online or send us a message.", "Tag someone who needs this.",
    "Open every day from 8.", "Questions? Drop us a message.", "Pop in and say hi.",
    "Tell us your favourite in the comments.",
)  # fmt: skip
_GIVEAWAY_LINE = "Tag a friend to enter, winner picked Friday."

# ------------------------------------------------------------------------ planted effects

SOCIAL_PLATFORMS = ("facebook", "instagram", "x")
_PLATFORM_ABBR = {"facebook": "fb", "instagram": "ig", "x": "x", "google_business": "gbp"}

# Local hour of publication -> multiplier on the engagement rate. Peak at 19 local.
HOUR_MULTIPLIERS: dict[int, float] = {
    0: 0.55, 1: 0.55, 2: 0.55, 3: 0.55, 4: 0.55, 5: 0.55, 6: 0.85, 7: 1.05, 8: 1.35,
    9: 1.05, 10: 1.0, 11: 1.0, 12: 1.4, 13: 1.1, 14: 1.0, 15: 1.0, 16: 1.0, 17: 1.15,
    18: 1.55, 19: 1.8, 20: 1.5, 21: 1.1, 22: 0.85, 23: 0.7,
}  # fmt: skip
PEAK_HOUR = 19
# Local weekday (Monday = 0) -> multiplier. Best: Wednesday; worst: Sunday.
WEEKDAY_MULTIPLIERS: dict[int, float] = {
    0: 0.95, 1: 1.05, 2: 1.15, 3: 1.05, 4: 0.95, 5: 0.9, 6: 0.85,
}  # fmt: skip
FORMAT_MULTIPLIERS: dict[str, float] = {
    "reel": 1.9, "video": 1.6, "carousel": 1.35, "image": 1.0, "story": 0.8, "text": 0.75,
    "link": 0.6,
}  # fmt: skip
# A hashtag's multiplier applies when the post carries it (case as written).
HASHTAG_MULTIPLIERS: dict[str, float] = {
    "#giveaway": 1.6, "#behindthescenes": 1.3, "#shoplocal": 1.2, "#ad": 0.7,
}  # fmt: skip
HASHTAG_PROBABILITIES: dict[str, float] = {
    "#giveaway": 0.12, "#behindthescenes": 0.15, "#shoplocal": 0.2, "#ad": 0.1,
}  # fmt: skip
# A post opens with at most one power phrase (probability POWER_PHRASE_PROBABILITY, the
# word chosen uniformly); its word's multiplier applies.
POWER_WORD_MULTIPLIERS: dict[str, float] = {
    "free": 1.5, "exclusive": 1.35, "secret": 1.3, "limited": 1.25, "new": 1.2,
}  # fmt: skip
POWER_PHRASE_PROBABILITY = 0.35
_POWER_PHRASES: dict[str, tuple[str, str]] = {
    "free": ("Free gift with every purchase this week!", "Free delivery this weekend!"),
    "exclusive": ("Exclusive offer for our followers.", "Exclusive first look, right here."),
    "secret": ("Our best-kept secret is out.", "Psst, we have a little secret."),
    "limited": ("Limited time only!", "Limited spots left!"),
    "new": ("New this week!", "Brand new and just landed!"),
}
PLATFORM_ENGAGEMENT_FACTOR: dict[str, float] = {"facebook": 0.8, "instagram": 1.3, "x": 0.6}
PLATFORM_REACH_FRACTION: dict[str, float] = {"facebook": 0.25, "instagram": 0.35, "x": 0.15}
PLATFORM_POSTS_PER_DAY: dict[str, float] = {"facebook": 1.1, "instagram": 1.3, "x": 1.6}
PLATFORM_FOLLOWER_FACTOR: dict[str, float] = {"facebook": 1.0, "instagram": 1.3, "x": 0.5}
PLATFORM_PRESENCE: dict[str, float] = {"facebook": 0.95, "instagram": 0.93, "x": 0.75}
FORMAT_PROBABILITIES: dict[str, dict[str, float]] = {
    "facebook": {"image": 0.35, "video": 0.15, "reel": 0.1, "carousel": 0.1, "link": 0.15,
                 "text": 0.15},
    "instagram": {"image": 0.35, "carousel": 0.25, "reel": 0.25, "video": 0.05, "story": 0.1},
    "x": {"text": 0.4, "image": 0.3, "video": 0.1, "link": 0.2},
}  # fmt: skip
ENGAGEMENT_NOISE_SIGMA = 0.35
BRAND_EFFECT_SIGMA = 0.25
# When brands post (local hour): mostly 7-22, a little at night, so every hour has data.
_POSTING_HABIT = np.array(
    [0.01] * 6 + [0.03] + [0.056] * 16 + [0.02], dtype=float
)  # 0-5, 6, 7-22, 23
_POSTING_HABIT = _POSTING_HABIT / _POSTING_HABIT.sum()
_ENGAGEMENT_SPLIT = {  # likes, comments, shares (retweets), saves (bookmarks)
    "facebook": (0.72, 0.10, 0.15, 0.03),
    "instagram": (0.78, 0.07, 0.05, 0.10),
    "x": (0.70, 0.10, 0.15, 0.05),
}
_CLICK_RATE = {"link": 0.012}  # others: 0.004
_VIDEO_VIEW_RATE = {"video": 0.5, "reel": 0.6}

PLANTED_EFFECTS: dict[str, Any] = {
    "engagement": "likes + comments + shares + saves (clicks and video_views excluded)",
    "hour_local": HOUR_MULTIPLIERS,
    "peak_hour_local": PEAK_HOUR,
    "weekday_local": WEEKDAY_MULTIPLIERS,
    "format": FORMAT_MULTIPLIERS,
    "hashtag": HASHTAG_MULTIPLIERS,
    "power_word": POWER_WORD_MULTIPLIERS,
    "platform": PLATFORM_ENGAGEMENT_FACTOR,
    "industry_base_rate": {k: v.base_engagement_rate for k, v in INDUSTRIES.items()},
    "noise_sigma": ENGAGEMENT_NOISE_SIGMA,
    "brand_effect_sigma": BRAND_EFFECT_SIGMA,
}

_HOUR_ARR = np.array([HOUR_MULTIPLIERS[h] for h in range(24)])
_WEEKDAY_ARR = np.array([WEEKDAY_MULTIPLIERS[d] for d in range(7)])
_FORMATS = tuple(s.POST_FORMATS)
_FORMAT_ARR = np.array([FORMAT_MULTIPLIERS[f] for f in _FORMATS])
_FORMAT_INDEX = {f: i for i, f in enumerate(_FORMATS)}
_PLANTED_TAGS = tuple(HASHTAG_MULTIPLIERS)
_PLANTED_TAG_MULT = np.array([HASHTAG_MULTIPLIERS[t] for t in _PLANTED_TAGS])
_PLANTED_TAG_PROB = np.array([HASHTAG_PROBABILITIES[t] for t in _PLANTED_TAGS])
_POWER_WORDS = tuple(POWER_WORD_MULTIPLIERS)
_POWER_MULT = np.array([POWER_WORD_MULTIPLIERS[w] for w in _POWER_WORDS] + [1.0])  # -1 = none

_WORD_RE = re.compile(r"[a-z]+")


def neutral_texts() -> list[str]:
    """Every text fragment that may appear in a body besides power phrases and planted tags."""
    out = list(_CTAS) + [_GIVEAWAY_LINE]
    for p in INDUSTRIES.values():
        out += list(p.sentences) + list(p.items) + list(p.hashtags)
    return out


def _check_neutral_texts() -> None:
    planted = set(POWER_WORD_MULTIPLIERS)
    for text in neutral_texts():
        words = set(_WORD_RE.findall(text.lower()))
        if words & planted or text.lower() in HASHTAG_MULTIPLIERS:
            raise AssertionError(f"neutral demo text {text!r} contains a planted word or tag")


_check_neutral_texts()


def planted_multiplier(
    local_hour: int, local_weekday: int, fmt: str, body: str, platform: str | None = None
) -> float:
    """The planted multiplier for one post (without industry, brand and noise factors)."""
    m = HOUR_MULTIPLIERS[local_hour] * WEEKDAY_MULTIPLIERS[local_weekday]
    m *= FORMAT_MULTIPLIERS[fmt]
    tokens = body.split()
    for tag, mult in HASHTAG_MULTIPLIERS.items():
        if tag in tokens:
            m *= mult
    words = set(_WORD_RE.findall(body.lower()))
    for word, mult in POWER_WORD_MULTIPLIERS.items():
        if word in words:
            m *= mult
    if platform is not None:
        m *= PLATFORM_ENGAGEMENT_FACTOR[platform]
    return m


# ------------------------------------------------------------------------------ the report


@dataclass
class SeedReport:
    brands: int = 0
    competitors: int = 0
    platform_accounts: int = 0
    content_posts: int = 0
    post_metrics: int = 0
    account_metrics: int = 0
    scheduled_content: int = 0
    brand_objectives: int = 0
    skipped_brands: int = 0  # already present (same seed): left as they were
    replaced_brands: int = 0
    elapsed_seconds: float = 0.0

    @property
    def total_rows(self) -> int:
        return sum(getattr(self, t) for t in TABLE_ORDER)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        parts = ", ".join(f"{getattr(self, t):,} {t}" for t in TABLE_ORDER)
        extra = f"; {self.skipped_brands} brands already present" if self.skipped_brands else ""
        if self.replaced_brands:
            extra += f"; {self.replaced_brands} brands replaced"
        return f"seeded {parts} in {self.elapsed_seconds:.1f}s{extra}"


# Insert order (foreign keys first).
TABLE_ORDER = (
    "brands",
    "competitors",
    "platform_accounts",
    "content_posts",
    "post_metrics",
    "account_metrics",
    "scheduled_content",
    "brand_objectives",
)
_TABLES = {name: s.metadata.tables[name] for name in TABLE_ORDER}

# ------------------------------------------------------------------------------ ids


def brand_id(seed: int, index: int) -> str:
    """The stable id of the demo brand ``index`` (0-based) for ``seed``."""
    return f"brand-{seed}-{index + 1:05d}"


def _tag(seed: int, index: int) -> str:
    return f"{seed}-{index + 1:05d}"


def default_now() -> datetime:
    """The current UTC time rounded down to the hour."""
    return datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0)


def _utc(now: datetime | None) -> datetime:
    if now is None:
        return default_now()
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware (UTC)")
    return now.astimezone(timezone.utc)


# ------------------------------------------------------------------------- seed-level plan


@dataclass(frozen=True)
class _Plan:
    slots: tuple[str, ...]  # country per position in a rotation cycle
    slot_rank: tuple[int, ...]  # how many earlier slots in the cycle have the same country
    per_cycle: dict[str, int]
    city_order: dict[str, tuple[int, ...]]  # per country: a seed-shuffled city order


@lru_cache(maxsize=32)
def _plan(seed: int) -> _Plan:
    rng = np.random.default_rng([seed, 0x5EED])
    slots = [cc for cc, w in COUNTRY_WEIGHTS.items() for _ in range(w)]
    slots = [slots[i] for i in rng.permutation(len(slots))]
    rank, seen = [], {}
    for cc in slots:
        rank.append(seen.get(cc, 0))
        seen[cc] = seen.get(cc, 0) + 1
    city_order = {
        cc: tuple(int(i) for i in rng.permutation(len(_CITIES_BY_COUNTRY[cc])))
        for cc in DEMO_COUNTRIES
    }
    return _Plan(tuple(slots), tuple(rank), seen, city_order)


def city_for(seed: int, index: int) -> DemoCity:
    """The city of demo brand ``index``: countries rotate, cities cycle within a country."""
    plan = _plan(seed)
    cycle, pos = divmod(index, len(plan.slots))
    cc = plan.slots[pos]
    nth = cycle * plan.per_cycle[cc] + plan.slot_rank[pos]
    order = plan.city_order[cc]
    return _CITIES_BY_COUNTRY[cc][order[nth % len(order)]]


# ------------------------------------------------------------------------- generation

_ALNUM = np.array(list("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"))
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def _token(rng: np.random.Generator, prefix: str, length: int) -> str:
    return prefix + "".join(_ALNUM[rng.integers(0, len(_ALNUM), size=length)])


def _slug(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "", ascii_text.lower())[:30] or "brand"


def _name(rng: np.random.Generator, industry: IndustryProfile, city: DemoCity) -> str:
    suffix = industry.suffixes[int(rng.integers(len(industry.suffixes)))]
    style = rng.random()
    if style < 0.6:
        first = _NAME_PREFIXES[int(rng.integers(len(_NAME_PREFIXES)))]
    elif style < 0.85:
        names = _SURNAMES[_SURNAME_GROUP.get(city.country_code, "EN")]
        first = names[int(rng.integers(len(names)))]
    else:
        first = city.name
    return f"{first} {suffix}"


def _secs_to_dt(secs: np.ndarray) -> list[datetime]:
    return [_EPOCH + timedelta(seconds=v) for v in secs.tolist()]


def generate_brand(
    seed: int,
    index: int,
    *,
    now: datetime | None = None,
    days: int = 90,
    sites_base_url: str = DEFAULT_SITES_BASE_URL,
    media_base_url: str = DEFAULT_MEDIA_BASE_URL,
) -> dict[str, list[dict[str, Any]]]:
    """All demo rows of brand ``index`` (0-based) for ``seed``, keyed by table name.

    Pure and deterministic: the same arguments give the same rows.
    """
    if seed < 0:
        raise ValueError("seed must be >= 0")
    if days < 1:
        raise ValueError("days must be >= 1")
    now = _utc(now)
    sites_base_url = sites_base_url.rstrip("/")
    media_base_url = media_base_url.rstrip("/")
    rng = np.random.default_rng([seed, index])
    tag = _tag(seed, index)
    bid = brand_id(seed, index)
    out: dict[str, list[dict[str, Any]]] = {t: [] for t in TABLE_ORDER}

    # ---------------------------------------------------------------- the brand
    city = city_for(seed, index)
    weights = np.array([INDUSTRIES[n].weight for n in INDUSTRY_NAMES])
    industry = INDUSTRIES[INDUSTRY_NAMES[int(rng.choice(len(weights), p=weights / weights.sum()))]]
    name = _name(rng, industry, city)
    has_location = index % 50 != 7
    is_active = index % 20 != 13
    n_kw = int(rng.integers(4, 7))
    kw_idx = rng.permutation(len(industry.keywords))[: min(n_kw, len(industry.keywords))]
    keywords = [industry.keywords[int(i)] for i in sorted(kw_idx)]
    if has_location:
        keywords.append(f"{industry.keywords[0]} {city.name}")
    budget = float(rng.choice([5, 10, 15, 20, 25, 30, 50, 75, 100, 150, 200]))
    created_at = now - timedelta(
        days=days + int(rng.integers(0, 540)), minutes=int(rng.integers(0, 1440))
    )
    out["brands"].append(
        {
            "id": bid,
            "name": name,
            "industry": industry.name,
            "country_code": city.country_code,
            "subdivision": city.subdivision,
            "city": city.name if has_location else None,
            "latitude": city.latitude if has_location else None,
            "longitude": city.longitude if has_location else None,
            "timezone": city.timezone,
            "keywords": keywords,
            "is_active": is_active,
            "monthly_ai_budget_usd": budget,
            "created_at": created_at,
            "updated_at": created_at + timedelta(days=int(rng.integers(0, days))),
        }
    )

    # ---------------------------------------------------------------- competitors
    n_comp = int(rng.integers(2, 5))
    used = {name}
    for j in range(1, n_comp + 1):
        cid = f"comp-{tag}-{j}"
        cname = _name(rng, industry, city)
        if cname in used:
            cname = f"{cname} {['II', 'Studio', 'Collective', 'House'][j - 1]}"
        used.add(cname)
        site = f"{sites_base_url}/{cid}"
        out["competitors"].append(
            {
                "id": cid,
                "brand_id": bid,
                "name": cname,
                "website_url": f"{site}/",
                "watch_urls": [f"{site}/", f"{site}/pricing"],
                "feed_url": f"{site}/feed.xml",
                "social_accounts": {
                    "x": str(int(rng.integers(10**17, 10**18))),
                    "facebook": str(int(rng.integers(10**14, 10**15))),
                },
                "is_active": bool(rng.random() > 0.05),
                "created_at": created_at + timedelta(days=int(rng.integers(0, 30))),
            }
        )

    # ---------------------------------------------------------------- platform accounts
    presence = rng.random(4)
    social = [p for k, p in enumerate(SOCIAL_PLATFORMS) if presence[k] < PLATFORM_PRESENCE[p]]
    if not social:
        social = ["instagram"]
    platforms = list(social)
    if presence[3] < (0.9 if industry.local else 0.3):
        platforms.append("google_business")
    handle = _slug(name)
    account_ok: dict[str, bool] = {}
    for k, p in enumerate(platforms):
        abbr = _PLATFORM_ABBR[p]
        if p == "facebook":
            ext = str(int(rng.integers(10**14, 10**15)))
            token = _token(rng, "EAAG", 160)
        elif p == "instagram":
            ext = str(int(rng.integers(17841400000000000, 17841499999999999)))
            token = _token(rng, "IGQV", 140)
        elif p == "x":
            ext = str(int(rng.integers(10**17, 10**18)))
            token = _token(rng, "", 90)
        else:
            ext = (
                f"accounts/{int(rng.integers(10**17, 10**18))}"
                f"/locations/{int(rng.integers(10**17, 10**18))}"
            )
            token = _token(rng, "ya29.", 150)
        expired = (index % 25 == 11 and k == 0) or rng.random() < 0.01
        if expired:
            expires = now - timedelta(days=int(rng.integers(1, 20)), hours=int(rng.integers(0, 24)))
        else:
            expires = now + timedelta(days=int(rng.integers(7, 60)), hours=int(rng.integers(0, 24)))
        active = bool(rng.random() > 0.03)
        account_ok[p] = active and not expired
        out["platform_accounts"].append(
            {
                "id": f"acct-{tag}-{abbr}",
                "brand_id": bid,
                "platform": p,
                "external_account_id": ext,
                "handle": handle,
                "access_token": token,
                "token_expires_at": expires,
                "is_active": active,
                "created_at": created_at + timedelta(days=int(rng.integers(0, 30))),
            }
        )

    # ---------------------------------------------------------------- followers
    today = now.date()
    start_day = today - timedelta(days=days - 1)
    base_followers = math.exp(rng.normal(math.log(3500), 0.9))
    followers: dict[str, np.ndarray] = {}
    offsets = np.arange(days, dtype=float)  # 0 = start_day
    for p in social:
        end = max(
            150.0, base_followers * PLATFORM_FOLLOWER_FACTOR[p] * math.exp(rng.normal(0, 0.3))
        )
        growth = max(0.0005, rng.normal(0.0013, 0.0006))
        series = end * np.exp(-growth * (days - 1 - offsets)) * (1 + rng.normal(0, 0.001, days))
        followers[p] = np.maximum(series.round(), 1).astype(np.int64)
        out["account_metrics"].extend(
            {
                "brand_id": bid,
                "platform": p,
                "metric_date": start_day + timedelta(days=d),
                "followers": f,
                "collected_at": now,
            }
            for d, f in enumerate(followers[p].tolist())
        )

    # ---------------------------------------------------------------- posts
    _posts(rng, out, tag, bid, industry, city.timezone, social, followers, now, days,
           start_day, handle)  # fmt: skip

    # ---------------------------------------------------------------- scheduled content
    publishable = [p for p in social if account_ok.get(p)]
    if is_active and publishable:
        n_due = int(rng.integers(1, 3))
        n_future = int(rng.integers(2, 5))
        n_cancel = int(rng.random() < 0.5)
        kinds = ["due"] * n_due + ["future"] * n_future + ["cancelled"] * n_cancel
        for j, kind in enumerate(kinds, 1):
            sid = f"sched-{tag}-{j:02d}"
            p = publishable[int(rng.integers(len(publishable)))]
            fmt_names = list(FORMAT_PROBABILITIES[p])
            probs = np.array(list(FORMAT_PROBABILITIES[p].values()))
            fmt = fmt_names[int(rng.choice(len(fmt_names), p=probs / probs.sum()))]
            if kind == "due":
                when = now - timedelta(minutes=int(rng.integers(0, 11)))
            elif kind == "future":
                when = now + timedelta(minutes=int(rng.integers(60, 7 * 24 * 60)))
            else:
                when = now + timedelta(minutes=int(rng.integers(-3 * 24 * 60, 3 * 24 * 60)))
            if fmt in ("image", "story"):
                media = [f"{media_base_url}/{sid}/1.jpg"]
            elif fmt == "carousel":
                media = [f"{media_base_url}/{sid}/{m}.jpg" for m in range(1, 4)]
            elif fmt in ("video", "reel"):
                media = [f"{media_base_url}/{sid}/1.mp4"]
            else:
                media = []
            body = _one_body(rng, industry, p, fmt, handle)
            out["scheduled_content"].append(
                {
                    "id": sid,
                    "brand_id": bid,
                    "platform": p,
                    "body": body,
                    "media_urls": media,
                    "format": fmt,
                    "scheduled_at": when,
                    "status": "cancelled" if kind == "cancelled" else "scheduled",
                    "attempts": 0,
                    "created_at": min(when, now) - timedelta(hours=int(rng.integers(1, 72))),
                    "updated_at": now,
                }
            )

    # ---------------------------------------------------------------- objectives
    metrics = ["followers", "engagement_rate", "posts_per_week"]
    n_obj = int(rng.integers(1, 4))
    chosen = [metrics[int(i)] for i in rng.permutation(3)[:n_obj]]
    posts = out["content_posts"]
    pm = out["post_metrics"]
    for j, metric in enumerate(chosen, 1):
        start = today - timedelta(days=int(rng.integers(7, min(60, days) + 7)))
        deadline = today + timedelta(days=int(rng.integers(14, 181)))
        platform = "instagram" if "instagram" in social else social[0]
        if metric == "followers":
            off = min(max((start - start_day).days, 0), days - 1)
            baseline = float(followers[platform][off])
            target = float(round(baseline * (1 + rng.uniform(0.1, 0.5))))
        elif metric == "engagement_rate":
            eng = [
                (m["likes"] + m["comments"] + m["shares"] + m["saves"], m["impressions"])
                for m, p_ in zip(pm, posts)
                if p_["platform"] == platform
            ]
            imp = sum(e[1] for e in eng)
            baseline = round(sum(e[0] for e in eng) / imp, 4) if imp else 0.03
            target = round(baseline * rng.uniform(1.15, 1.5), 4)
        else:
            platform = None
            baseline = round(len(posts) / max(days / 7, 1), 1)
            target = float(math.ceil(baseline + rng.uniform(1, 5)))
        out["brand_objectives"].append(
            {
                "id": f"obj-{tag}-{j}",
                "brand_id": bid,
                "metric": metric,
                "platform": platform,
                "baseline_value": baseline,
                "target_value": target,
                "start_date": start,
                "deadline": deadline,
                "created_at": datetime.combine(start, datetime.min.time(), timezone.utc),
            }
        )
    return out


def _one_body(rng, industry: IndustryProfile, platform: str, fmt: str, handle: str) -> str:
    word = int(rng.integers(len(_POWER_WORDS))) if rng.random() < POWER_PHRASE_PROBABILITY else -1
    flags = rng.random((1, len(_PLANTED_TAGS))) < _PLANTED_TAG_PROB
    return _bodies(rng, industry, [platform], [fmt], handle, [word], flags)[0]


def _bodies(rng, industry, platforms, fmts, handle, words, flags) -> list[str]:
    """Post texts: [power phrase] sentence [giveaway line] [CTA or link] hashtags."""
    n = len(platforms)
    variant = rng.integers(0, 2, n).tolist()
    sentence = rng.integers(0, len(industry.sentences), n).tolist()
    item = rng.integers(0, len(industry.items), n).tolist()
    cta = rng.integers(0, len(_CTAS), n).tolist()
    x_cta = (rng.random(n) < 0.3).tolist()
    link_no = rng.integers(100, 1000, n).tolist()
    n_tags = rng.integers(1, 4, n).tolist()
    pool = industry.hashtags
    tag_order = np.argsort(rng.random((n, len(pool))), axis=1).tolist()
    flag_rows = np.asarray(flags, dtype=bool).tolist()
    out = []
    for i in range(n):
        platform, fmt, word, f = platforms[i], fmts[i], words[i], flag_rows[i]
        parts = []
        if word >= 0:
            parts.append(_POWER_PHRASES[_POWER_WORDS[word]][variant[i]])
        parts.append(industry.sentences[sentence[i]].replace("{item}", industry.items[item[i]]))
        if f[0]:
            parts.append(_GIVEAWAY_LINE)
        if fmt == "link":
            parts.append(f"https://example.com/{handle}/{link_no[i]}")
        elif platform != "x" or x_cta[i]:
            parts.append(_CTAS[cta[i]])
        k = min(n_tags[i], 2) if platform == "x" else n_tags[i]
        tags = [pool[j] for j in tag_order[i][:k]]
        tags += [tg for tg, on in zip(_PLANTED_TAGS, f) if on]
        parts.append(" ".join(tags))
        out.append(" ".join(parts))
    return out


def _posts(rng, out, tag, bid, industry, tz, social, followers, now, days, start_day,
           handle) -> None:  # fmt: skip
    """Published posts and their metrics for one brand (all platforms, vectorised)."""
    now_s = int((now - _EPOCH).total_seconds())
    window_s = now_s - days * 86400
    local_today = now.astimezone(ZoneInfo(tz)).date()
    first_local = np.datetime64(local_today - timedelta(days=days), "D")

    plat_idx_parts, day_parts = [], []
    activity = math.exp(rng.normal(0, 0.25))
    for k, p in enumerate(social):
        per_day = rng.poisson(PLATFORM_POSTS_PER_DAY[p] * activity, size=days + 1)
        n = int(per_day.sum())
        plat_idx_parts.append(np.full(n, k, dtype=np.int64))
        day_parts.append(np.repeat(np.arange(days + 1), per_day))
    plat_idx = np.concatenate(plat_idx_parts)
    day_idx = np.concatenate(day_parts)
    n = len(plat_idx)
    if n == 0:
        return
    hour = rng.choice(24, size=n, p=_POSTING_HABIT)
    second_of_hour = rng.integers(0, 3600, size=n)
    local_naive = (first_local + day_idx.astype("timedelta64[D]")).astype("datetime64[s]") + (
        hour * 3600 + second_of_hour
    ).astype("timedelta64[s]")
    idx = pd.DatetimeIndex(local_naive.astype("datetime64[ns]")).tz_localize(
        tz, ambiguous=np.zeros(n, dtype=bool), nonexistent="shift_forward"
    )
    utc_s = idx.tz_convert("UTC").tz_localize(None).values.astype("datetime64[s]").astype(np.int64)
    local_back = idx.tz_convert(tz)
    local_hour = np.asarray(local_back.hour, dtype=np.int64)
    local_wd = np.asarray(local_back.day_of_week, dtype=np.int64)

    # Per-post draws (all n drawn, then filtered to the window, so the stream is stable).
    fmt_idx = np.empty(n, dtype=np.int64)
    for k, p in enumerate(social):
        mask = plat_idx == k
        names = list(FORMAT_PROBABILITIES[p])
        probs = np.array(list(FORMAT_PROBABILITIES[p].values()))
        choice = rng.choice(len(names), size=int(mask.sum()), p=probs / probs.sum())
        fmt_idx[mask] = np.array([_FORMAT_INDEX[f] for f in names])[choice]
    word = np.where(
        rng.random(n) < POWER_PHRASE_PROBABILITY, rng.integers(0, len(_POWER_WORDS), n), -1
    )
    flags = rng.random((n, len(_PLANTED_TAGS))) < _PLANTED_TAG_PROB
    noise = rng.lognormal(-(ENGAGEMENT_NOISE_SIGMA**2) / 2, ENGAGEMENT_NOISE_SIGMA, n)
    imp_noise = rng.lognormal(-(0.3**2) / 2, 0.3, n)
    reach_frac = rng.uniform(0.6, 0.9, n)
    brand_effect = math.exp(rng.normal(-(BRAND_EFFECT_SIGMA**2) / 2, BRAND_EFFECT_SIGMA))

    keep = (utc_s >= window_s) & (utc_s < now_s)
    order = np.flatnonzero(keep)
    order = order[np.lexsort((plat_idx[order], utc_s[order]))]
    plat_idx, utc_s, local_hour, local_wd = (
        plat_idx[order],
        utc_s[order],
        local_hour[order],
        local_wd[order],
    )
    fmt_idx, word, flags = fmt_idx[order], word[order], flags[order]
    noise, imp_noise, reach_frac = noise[order], imp_noise[order], reach_frac[order]
    n = len(order)
    if n == 0:
        return

    plat_names = np.array(social)
    plat_er = np.array([PLATFORM_ENGAGEMENT_FACTOR[p] for p in social])[plat_idx]
    plat_reach = np.array([PLATFORM_REACH_FRACTION[p] for p in social])[plat_idx]
    tag_mult = np.prod(np.where(flags, _PLANTED_TAG_MULT, 1.0), axis=1)
    rate = (
        industry.base_engagement_rate * plat_er * brand_effect * _HOUR_ARR[local_hour]
        * _WEEKDAY_ARR[local_wd] * _FORMAT_ARR[fmt_idx] * tag_mult * _POWER_MULT[word] * noise
    )  # fmt: skip
    rate = np.minimum(rate, 0.6)
    start_epoch_day = (start_day - _EPOCH.date()).days
    day_off = np.clip(utc_s // 86400 - start_epoch_day, 0, days - 1)
    fol = np.empty(n, dtype=float)
    for k, p in enumerate(social):
        mask = plat_idx == k
        fol[mask] = followers[p][day_off[mask]]
    age_h = (now_s - utc_s) / 3600.0
    maturity = 1.0 - np.exp(-age_h / 12.0)
    impressions = np.round(fol * plat_reach * imp_noise * maturity).astype(np.int64)
    engagements = rng.poisson(impressions * rate)
    split = np.zeros((n, 4), dtype=np.int64)
    for k, p in enumerate(social):
        mask = plat_idx == k
        if mask.any():
            split[mask] = rng.multinomial(engagements[mask], _ENGAGEMENT_SPLIT[p])
    fmt_names = np.array(_FORMATS)[fmt_idx]
    ctr = np.where(fmt_names == "link", _CLICK_RATE["link"], 0.004)
    clicks = rng.poisson(impressions * ctr)
    vv_rate = np.select([fmt_names == "video", fmt_names == "reel"], [0.5, 0.6], 0.0)
    video_views = rng.binomial(impressions, vv_rate)
    reach = np.round(impressions * reach_frac).astype(np.int64)

    # External ids: per account, a random base plus the publication sequence number.
    published = _secs_to_dt(utc_s)
    seq = np.zeros(n, dtype=np.int64)
    ext_base: dict[int, int] = {}
    for k, p in enumerate(social):
        mask = plat_idx == k
        seq[mask] = np.arange(int(mask.sum()))
        if p == "facebook":
            ext_base[k] = int(rng.integers(10**15, 9 * 10**15))
        elif p == "instagram":
            ext_base[k] = int(rng.integers(17_800_000_000_000_000, 18_100_000_000_000_000))
        else:
            ext_base[k] = int(rng.integers(1_600_000_000_000_000_000, 1_900_000_000_000_000_000))
    accounts = {a["platform"]: a["external_account_id"] for a in out["platform_accounts"]}

    metric_date = now.date()
    plat_list = plat_idx.tolist()
    seq_list = seq.tolist()
    fmt_list = fmt_names.tolist()
    word_list = word.tolist()
    bodies = _bodies(
        rng, industry, [social[k] for k in plat_list], fmt_list, handle, word_list, flags
    )
    posts = out["content_posts"]
    metrics = out["post_metrics"]
    cols = zip(
        impressions.tolist(), reach.tolist(), split[:, 0].tolist(), split[:, 1].tolist(),
        split[:, 2].tolist(), split[:, 3].tolist(), clicks.tolist(), video_views.tolist(),
    )  # fmt: skip
    for i, (imp, rch, lk, cm, sh, sv, cl, vv) in enumerate(cols):
        k = plat_list[i]
        p = social[k]
        num = ext_base[k] + seq_list[i]
        if p == "facebook":
            ext = f"{accounts[p]}_{num}"
            link = f"https://www.facebook.com/{accounts[p]}/posts/{num}"
        elif p == "instagram":
            ext = str(num)
            link = f"https://www.instagram.com/{handle}/p/{num}/"
        else:
            ext = str(num)
            link = f"https://x.com/{handle}/status/{num}"
        pid = f"post-{tag}-{_PLATFORM_ABBR[p]}-{seq_list[i] + 1:05d}"
        posts.append(
            {
                "id": pid,
                "brand_id": bid,
                "platform": p,
                "external_post_id": ext,
                "body": bodies[i],
                "format": fmt_list[i],
                "published_at": published[i],
                "permalink": link,
                "collected_at": now,
            }
        )
        metrics.append(
            {
                "post_id": pid,
                "metric_date": metric_date,
                "impressions": imp,
                "reach": rch,
                "likes": lk,
                "comments": cm,
                "shares": sh,
                "saves": sv,
                "clicks": cl,
                "video_views": vv,
                "collected_at": now,
            }
        )


# ------------------------------------------------------------------------------ seeding


def _delete_brands(conn: Connection, ids: list[str]) -> None:
    """Remove these brands and every row that refers to them (not relying on ON DELETE)."""
    posts = s.metadata.tables["content_posts"]
    sched = s.metadata.tables["scheduled_content"]
    comps = s.metadata.tables["competitors"]
    for table in reversed(s.metadata.sorted_tables):
        if table.name == "brands":
            continue
        for fk in table.foreign_keys:
            ref = fk.column.table
            col = fk.parent
            if ref is posts:
                conn.execute(
                    table.delete().where(
                        col.in_(sa.select(posts.c.id).where(posts.c.brand_id.in_(ids)))
                    )
                )
            elif ref is sched:
                conn.execute(
                    table.delete().where(
                        col.in_(sa.select(sched.c.id).where(sched.c.brand_id.in_(ids)))
                    )
                )
            elif ref is comps:
                conn.execute(
                    table.delete().where(
                        col.in_(sa.select(comps.c.id).where(comps.c.brand_id.in_(ids)))
                    )
                )
        if "brand_id" in table.c:
            conn.execute(table.delete().where(table.c.brand_id.in_(ids)))
    brands = s.metadata.tables["brands"]
    conn.execute(brands.delete().where(brands.c.id.in_(ids)))


# Bulk writing. The generic path is Core's executemany (``conn.execute(table.insert(),
# rows)``). On SQLite and PostgreSQL the rows are instead converted once to exactly what
# the column types would bind (SQLite: the DATETIME/DATE text SQLAlchemy stores, JSON text;
# PostgreSQL: COPY text format) and handed to the driver in one call per table and chunk:
# the same stored values, several times faster. A test checks both paths store the same.


def _sqlite_converter(col: sa.Column):
    typ = col.type
    if isinstance(typ, UTCDateTime):
        return lambda v: (
            None if v is None else v.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")
        )
    if isinstance(typ, sa.JSON):
        return lambda v: None if v is None else json.dumps(v)
    if isinstance(typ, sa.DateTime):
        raise TypeError(f"{col}: use UTCDateTime")
    if isinstance(typ, sa.Date):
        return lambda v: None if v is None else v.isoformat()
    return None  # the driver's own adaptation matches SQLAlchemy's for str, int, float, bool


_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _pg_converter(col: sa.Column):
    typ = col.type
    if isinstance(typ, UTCDateTime):
        return lambda v: "\\N" if v is None else v.astimezone(timezone.utc).isoformat()
    if isinstance(typ, sa.JSON):
        return lambda v: "\\N" if v is None else json.dumps(v).translate(_COPY_ESCAPES)
    if isinstance(typ, sa.Boolean):
        return lambda v: "\\N" if v is None else ("t" if v else "f")
    if isinstance(typ, (sa.String, sa.Text)):
        return lambda v: "\\N" if v is None else v.translate(_COPY_ESCAPES)
    if isinstance(typ, sa.Date):
        return lambda v: "\\N" if v is None else v.isoformat()
    return lambda v: "\\N" if v is None else str(v)


@dataclass
class _Payload:
    """One table's rows for one chunk, already in the form the driver takes."""

    table: sa.Table
    count: int
    rows: list[dict[str, Any]] | None = None  # Core path
    sql: str | None = None  # SQLite: INSERT ... VALUES (?, ...)
    tuples: list[tuple] | None = None
    copy_sql: str | None = None  # PostgreSQL: COPY ... FROM STDIN
    copy_text: str | None = None


def _prepare(
    dialect: sa.engine.Dialect, table: sa.Table, rows: list[dict[str, Any]], fast: bool
) -> _Payload:
    if not fast or dialect.name not in ("sqlite", "postgresql") or not rows:
        return _Payload(table, len(rows), rows=rows)
    columns = list(rows[0])
    if dialect.name == "sqlite":
        convs = [_sqlite_converter(table.c[c]) for c in columns]
        cols = [[r[c] for r in rows] for c in columns]
        cols = [col if f is None else [f(v) for v in col] for col, f in zip(cols, convs)]
        sql = str(table.insert().compile(dialect=dialect, column_keys=columns))
        return _Payload(table, len(rows), sql=sql, tuples=list(zip(*cols)))
    convs = [_pg_converter(table.c[c]) for c in columns]
    cols = [[f(r[c]) for r in rows] for c, f in zip(columns, convs)]
    text = "".join("\t".join(vals) + "\n" for vals in zip(*cols))
    names = ", ".join(f'"{c}"' for c in columns)
    return _Payload(
        table, len(rows), copy_sql=f'COPY "{table.name}" ({names}) FROM STDIN', copy_text=text
    )


def _send(conn: Connection, payload: _Payload) -> None:
    if payload.count == 0:
        return
    if payload.rows is not None:
        conn.execute(payload.table.insert(), payload.rows)
    elif payload.sql is not None:
        conn.exec_driver_sql(payload.sql, payload.tuples)
    else:
        cursor = conn.connection.dbapi_connection.cursor()
        try:
            cursor.copy_expert(payload.copy_sql, io.StringIO(payload.copy_text))
        finally:
            cursor.close()


def seed_demo(
    engine: Engine,
    brands: int,
    seed: int = 42,
    now: datetime | None = None,
    days: int = 90,
    *,
    sites_base_url: str = DEFAULT_SITES_BASE_URL,
    media_base_url: str = DEFAULT_MEDIA_BASE_URL,
    replace: bool = False,
    chunk_brands: int = DEFAULT_CHUNK_BRANDS,
    fast: bool = True,
    progress: Callable[[int, int], None] | None = None,
    analyze: bool = True,
) -> SeedReport:
    """Write ``brands`` demo brands (indices 0..brands-1) for ``seed``; see the module doc.

    Brands already present are skipped (``replace=False``) or rewritten (``replace=True``).
    One transaction per chunk of ``chunk_brands`` brands; the next chunk is generated in a
    worker thread while the current one is written. ``fast=False`` writes through Core's
    executemany instead of the driver-level bulk path (same stored values; slower).
    ``progress``, if given, is called with (brands done, brands total) after each chunk.
    ``analyze`` refreshes the planner statistics of the seeded tables afterwards (``ANALYZE``),
    as after any bulk load: without them PostgreSQL plans the jobs' queries blind until
    autovacuum gets to the tables (and never, where autovacuum is off).
    """
    if brands < 0:
        raise ValueError("brands must be >= 0")
    if seed < 0:
        raise ValueError("seed must be >= 0")
    if days < 1:
        raise ValueError("days must be >= 1")
    started = time.perf_counter()
    now = _utc(now)
    report = SeedReport()
    brands_t = _TABLES["brands"]
    dialect = engine.dialect
    step = max(1, chunk_brands)
    chunks = [list(range(lo, min(brands, lo + step))) for lo in range(0, brands, step)]

    def present_in(indices: list[int]) -> set[str]:
        ids = [brand_id(seed, i) for i in indices]
        with engine.connect() as conn:
            return set(
                conn.execute(sa.select(brands_t.c.id).where(brands_t.c.id.in_(ids))).scalars()
            )

    def build(indices: list[int]) -> list[_Payload]:
        rows: dict[str, list[dict[str, Any]]] = {t: [] for t in TABLE_ORDER}
        for i in indices:
            for t, r in generate_brand(
                seed, i, now=now, days=days, sites_base_url=sites_base_url,
                media_base_url=media_base_url,
            ).items():  # fmt: skip
                rows[t].extend(r)
        return [_prepare(dialect, _TABLES[t], rows[t], fast) for t in TABLE_ORDER]

    def submit(pool: ThreadPoolExecutor, k: int):
        present = present_in(chunks[k])
        todo = chunks[k] if replace else [i for i in chunks[k] if brand_id(seed, i) not in present]
        return present, pool.submit(build, todo)

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="marba-demo") as pool:
        pending = submit(pool, 0) if chunks else None
        for k in range(len(chunks)):
            present, future = pending
            payloads = future.result()
            pending = submit(pool, k + 1) if k + 1 < len(chunks) else None
            with engine.begin() as conn:
                if present and replace:
                    _delete_brands(conn, sorted(present))
                for payload in payloads:
                    _send(conn, payload)
            if replace:
                report.replaced_brands += len(present)
            else:
                report.skipped_brands += len(present)
            for payload in payloads:
                setattr(
                    report, payload.table.name, getattr(report, payload.table.name) + payload.count
                )
            if progress is not None:
                progress(chunks[k][-1] + 1, brands)
    if analyze and chunks:
        analyze_tables(engine, list(_TABLES))
    report.elapsed_seconds = round(time.perf_counter() - started, 3)
    return report


def analyze_tables(engine: Engine, tables: list[str]) -> None:
    """``ANALYZE`` each table (PostgreSQL and SQLite both keep planner statistics)."""
    preparer = engine.dialect.identifier_preparer
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        for name in tables:
            conn.exec_driver_sql(f"ANALYZE {preparer.quote(name)}")


def main(argv: list[str] | None = None) -> int:
    """Benchmark / manual entry point: ``python -m marba_dagster.store.demo --url URL``."""
    from . import migrate
    from .db import make_engine

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", default=None, help="database URL (default: MARBA_DATABASE_URL)")
    ap.add_argument("--brands", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--days", type=int, default=90)
    ap.add_argument("--now", default=None, help="ISO UTC timestamp (default: this hour)")
    ap.add_argument("--replace", action="store_true")
    ap.add_argument("--no-upgrade", action="store_true", help="do not run the migrations first")
    args = ap.parse_args(argv)
    engine = make_engine(args.url)
    if not args.no_upgrade:
        migrate.upgrade(engine)
    now = datetime.fromisoformat(args.now) if args.now else None
    if now is not None and now.tzinfo is None:
        now = now.replace(tzinfo=timezone.utc)
    report = seed_demo(
        engine, args.brands, seed=args.seed, now=now, days=args.days, replace=args.replace
    )
    engine.dispose()
    print(report.summary())
    print(json.dumps(report.as_dict()))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
