"""Drives Weir's FlightSQL endpoint with the real ADBC FlightSQL driver and prints what it saw as
JSON. Usage: flightsql_adbc.py PORT"""
import json
import sys

import adbc_driver_flightsql.dbapi as flight_sql

port = sys.argv[1]
result = {}
with flight_sql.connect(
    f"grpc://127.0.0.1:{port}",
    db_kwargs={"username": "anonymous", "password": ""},
) as connection:
    with connection.cursor() as cursor:
        cursor.execute('SELECT city, population FROM "alice/cities" ORDER BY population')
        table = cursor.fetch_arrow_table()
        result["rows"] = table.to_pylist()
        result["columns"] = table.schema.names
    objects = connection.adbc_get_objects(depth="tables").read_all().to_pylist()
    result["tables"] = sorted(
        table["table_name"]
        for catalog in objects
        for schema in catalog["catalog_db_schemas"] or []
        for table in schema["db_schema_tables"] or []
    )
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT * FROM nowhere_at_all")
            cursor.fetchall()
        result["bad_query"] = "no error"
    except Exception as error:  # the driver raises a DB-API error with the server's message
        result["bad_query"] = str(error)
print(json.dumps(result))
