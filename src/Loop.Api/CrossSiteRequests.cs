namespace Loop.Api;

using Loop.Runtime;
using Microsoft.AspNetCore.Http;

/// <summary>
/// Refuses changes a page of another site makes a browser send. An unsafe request (POST, PUT,
/// PATCH, DELETE) whose <c>Origin</c> is not this daemon's own scheme://host:port is refused, and
/// so is one signed in by the session cookie that shows neither an Origin nor a Referer of this
/// daemon. SameSite=Strict on the cookie is not enough: a page on another port of 127.0.0.1 is the
/// same site. Scripts and the CLI send a Bearer token and no Origin, and are not affected.
/// </summary>
public static class CrossSiteRequests
{
    /// <exception cref="LoopForbiddenException">The request came from another site's page.</exception>
    public static void Check(HttpRequest request, bool signedInByCookie)
    {
        if (HttpMethods.IsGet(request.Method) || HttpMethods.IsHead(request.Method) || HttpMethods.IsOptions(request.Method) || HttpMethods.IsTrace(request.Method))
        {
            return;
        }

        var own = $"{request.Scheme}://{request.Host}";
        var origin = request.Headers.Origin.ToString();
        if (origin.Length > 0)
        {
            if (!IsOwn(origin, request))
            {
                throw new LoopForbiddenException(
                    $"refused a cross-site request: it comes from a page of {origin}, not of this daemon ({own}); use the dashboard at {own}/, or call the API with Authorization: Bearer <token>");
            }
            return;
        }

        if (signedInByCookie && !IsOwn(request.Headers.Referer.ToString(), request))
        {
            throw new LoopForbiddenException(
                $"refused a change signed in by the session cookie without an Origin or Referer of this daemon ({own}): use the dashboard at {own}/, or call the API with Authorization: Bearer <token>");
        }
    }

    // Same origin: scheme, host and port of the request as served ("null" and garbage are not).
    private static bool IsOwn(string url, HttpRequest request) =>
        Uri.TryCreate(url, UriKind.Absolute, out var uri)
        && string.Equals(uri.Scheme, request.Scheme, StringComparison.OrdinalIgnoreCase)
        && string.Equals(uri.Host, request.Host.Host, StringComparison.OrdinalIgnoreCase)
        && uri.Port == (request.Host.Port ?? (request.IsHttps ? 443 : 80));
}
