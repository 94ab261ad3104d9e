"""Where the demo brands are: real cities by country, how often each country comes up, and the
local surnames and name prefixes brand names are built from."""

from __future__ import annotations

from dataclasses import dataclass

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
CITIES_BY_COUNTRY: dict[str, tuple[DemoCity, ...]] = {
    cc: tuple(c for c in DEMO_CITIES if c.country_code == cc) for cc in DEMO_COUNTRIES
}
# How often each country comes up in the brand rotation (slots per cycle).
COUNTRY_WEIGHTS: dict[str, int] = {
    "US": 5, "GB": 2, "DE": 2, "FR": 2, "AU": 2, "CA": 2, "IN": 2, "JP": 1, "BR": 1,
    "NO": 1, "ES": 1, "IT": 1, "NL": 1, "NZ": 1, "IE": 1, "MX": 1,
}  # fmt: skip

SURNAMES: dict[str, tuple[str, ...]] = {
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
SURNAME_GROUP = {"DE": "DE", "FR": "FR", "JP": "JP", "BR": "PT", "NO": "NO", "IN": "IN",
                  "ES": "ES", "MX": "ES", "IT": "IT", "NL": "NL"}  # fmt: skip

# Evocative name prefixes; none contains a planted power word.
NAME_PREFIXES = (
    "Blue Door", "Copper Kettle", "Little Owl", "Northside", "Golden Hour", "Maple & Oak",
    "Harbor", "Wild Fern", "Juniper", "Stone Mill", "Red Fox", "Silver Birch", "Lantern",
    "Driftwood", "Ember", "Sunday", "Wildflower", "Parkside", "Cedar", "Fable", "Honeycomb",
    "Kestrel", "Lighthouse", "Mosaic", "Oakwood", "Pepper Tree", "Riverside", "Saffron",
    "Tidewater", "Urban Grove", "Willow", "Zephyr", "Bluebird", "Brick Lane", "Common Ground",
    "Half Moon", "High Street", "Iron Gate", "Kindred", "Meadow", "Nimbus", "Orchard",
    "Pinecone", "Quarry", "Rosemary", "Second Act", "True North", "Velvet", "Westend",
    "Yellow House", "Foxglove", "Marigold", "Anchor", "Granite", "Hollow Tree", "Lucky Dog",
)  # fmt: skip
