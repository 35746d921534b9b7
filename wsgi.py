from fair import create_app

app = create_app()
