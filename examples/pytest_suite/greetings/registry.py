HANDLERS = []


def register(handler):
    HANDLERS.append(handler)
