from django.conf import settings


def site(request):
    return {"SANDBOX": settings.GPUNIQ_SANDBOX, "PUBLIC_BASE_URL": settings.PUBLIC_BASE_URL}
