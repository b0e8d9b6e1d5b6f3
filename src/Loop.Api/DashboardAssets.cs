namespace Loop.Api;

using System.Collections.Frozen;
using System.Security.Cryptography;
using Microsoft.AspNetCore.Http;

/// <summary>
/// Serves the web dashboard (src/Loop.Api/wwwroot, embedded in the assembly at build time) from the
/// daemon itself: no files on disk to install, no CDN. Paths outside /api only; the pages call the API
/// with the session cookie, so the assets themselves need no auth.
/// </summary>
public static class DashboardAssets
{
    private const string ResourcePrefix = "wwwroot/";

    // The pages load only their own scripts and styles and talk only to this origin.
    private const string ContentSecurityPolicy =
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
        "frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

    private static readonly FrozenDictionary<string, Asset> Assets = Load();

    public static int Count => Assets.Count;

    public static async Task ServeAsync(HttpContext context, RequestDelegate next)
    {
        var request = context.Request;
        if (request.Path.StartsWithSegments("/api") || !(HttpMethods.IsGet(request.Method) || HttpMethods.IsHead(request.Method)))
        {
            await next(context);
            return;
        }
        var path = request.Path.Value is null or "/" ? "index.html" : request.Path.Value.TrimStart('/');
        if (!Assets.TryGetValue(path, out var asset))
        {
            await next(context);
            return;
        }

        var headers = context.Response.Headers;
        headers.ContentType = asset.ContentType;
        headers.ETag = asset.ETag;
        // Revalidate every time: an upgraded daemon must never run old scripts against its new API.
        headers.CacheControl = "no-cache";
        headers.XContentTypeOptions = "nosniff";
        // Not no-referrer: under it the Fetch standard has a browser send "Origin: null" on the
        // pages' own POSTs, which CrossSiteRequests refuses. same-origin still tells other sites nothing.
        headers["Referrer-Policy"] = "same-origin";
        headers.ContentSecurityPolicy = ContentSecurityPolicy;
        headers.XFrameOptions = "DENY";
        if (request.Headers.IfNoneMatch == asset.ETag)
        {
            context.Response.StatusCode = StatusCodes.Status304NotModified;
            return;
        }
        context.Response.ContentLength = asset.Content.Length;
        if (HttpMethods.IsGet(request.Method))
        {
            await context.Response.Body.WriteAsync(asset.Content, context.RequestAborted);
        }
    }

    private static FrozenDictionary<string, Asset> Load()
    {
        var assembly = typeof(DashboardAssets).Assembly;
        var assets = new Dictionary<string, Asset>(StringComparer.Ordinal);
        foreach (var name in assembly.GetManifestResourceNames().Where(n => n.StartsWith(ResourcePrefix, StringComparison.Ordinal)))
        {
            using var stream = assembly.GetManifestResourceStream(name)!;
            using var buffer = new MemoryStream();
            stream.CopyTo(buffer);
            var content = buffer.ToArray();
            var etag = "\"" + Convert.ToHexStringLower(SHA256.HashData(content).AsSpan(0, 12)) + "\"";
            assets[name[ResourcePrefix.Length..]] = new Asset(content, ContentTypeOf(name), etag);
        }
        return assets.ToFrozenDictionary(StringComparer.Ordinal);
    }

    private static string ContentTypeOf(string name) => Path.GetExtension(name) switch
    {
        ".html" => "text/html; charset=utf-8",
        ".js" => "text/javascript; charset=utf-8",
        ".css" => "text/css; charset=utf-8",
        ".svg" => "image/svg+xml",
        ".png" => "image/png",
        ".ico" => "image/x-icon",
        ".json" => "application/json",
        _ => "application/octet-stream",
    };

    private sealed record Asset(byte[] Content, string ContentType, string ETag);
}
