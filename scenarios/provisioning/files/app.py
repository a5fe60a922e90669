# A minimal WSGI application for the gunicorn scenarios: answers every request with one line
# naming the address the request came from, so a client's output shows the family it used.


def app(environ, start_response):
    body = "hello from gunicorn; you are {}\n".format(environ.get("REMOTE_ADDR", "?")).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
