namespace Loop.Integration.Tests;

using System.Net;
using System.Net.Http.Headers;
using System.Text.RegularExpressions;
using Loop.Testing;

/// <summary>The web dashboard's files as a browser fetches them from a real <c>loop serve</c>.</summary>
public sealed partial class DashboardAssetsTests
{
    [Fact]
    public async Task The_dashboard_is_served_at_the_root_with_every_script_it_imports_and_no_login_needed()
    {
        await using var loop = await LoopDaemon.StartAsync();
        using var browser = new HttpClient { BaseAddress = new Uri(loop.ApiUrl) };

        using var index = await browser.GetAsync("/");
        Assert.Equal(HttpStatusCode.OK, index.StatusCode);
        Assert.Equal("text/html", index.Content.Headers.ContentType?.MediaType);
        var html = await index.Content.ReadAsStringAsync();
        Assert.Contains("<script type=\"module\" src=\"/js/main.js\"></script>", html);
        var policy = string.Join(" ", index.Headers.GetValues("Content-Security-Policy"));
        Assert.Contains("default-src 'self'", policy);
        Assert.Contains("frame-ancestors 'none'", policy);
        Assert.Equal("nosniff", Assert.Single(index.Headers.GetValues("X-Content-Type-Options")));

        // Follow the module graph from main.js: every import resolves, so nothing is missing from the binary.
        var pending = new Queue<string>(["/js/main.js", "/app.css"]);
        var seen = new HashSet<string>();
        while (pending.TryDequeue(out var path))
        {
            if (!seen.Add(path))
            {
                continue;
            }
            using var response = await browser.GetAsync(path);
            Assert.True(response.StatusCode == HttpStatusCode.OK, $"{path} answered {(int)response.StatusCode}");
            var body = await response.Content.ReadAsStringAsync();
            if (path.EndsWith(".js", StringComparison.Ordinal))
            {
                Assert.Equal("text/javascript", response.Content.Headers.ContentType?.MediaType);
                foreach (Match import in ImportPattern().Matches(body))
                {
                    pending.Enqueue(new Uri(new Uri("http://x" + path), import.Groups[1].Value).AbsolutePath);
                }
            }
        }
        Assert.Contains("/js/pages/chat.js", seen);
        Assert.Contains("/js/pages/runtime.js", seen);
        Assert.True(seen.Count >= 12, $"only {seen.Count} files: {string.Join(", ", seen)}");
    }

    [Fact]
    public async Task Assets_are_revalidated_by_etag_and_unknown_paths_are_404()
    {
        await using var loop = await LoopDaemon.StartAsync();
        using var browser = new HttpClient { BaseAddress = new Uri(loop.ApiUrl) };
        // A stale session cookie must not keep the login page from loading.
        browser.DefaultRequestHeaders.Add("Cookie", "loop_session=expired-or-made-up");

        using var first = await browser.GetAsync("/js/main.js");
        Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        Assert.Equal("no-cache", first.Headers.CacheControl?.ToString());
        var etag = first.Headers.ETag ?? throw new Xunit.Sdk.XunitException("no ETag on /js/main.js");

        using var conditional = new HttpRequestMessage(HttpMethod.Get, "/js/main.js");
        conditional.Headers.IfNoneMatch.Add(new EntityTagHeaderValue(etag.Tag));
        using var revalidated = await browser.SendAsync(conditional);
        Assert.Equal(HttpStatusCode.NotModified, revalidated.StatusCode);
        Assert.Empty(await revalidated.Content.ReadAsByteArrayAsync());

        using var head = await browser.SendAsync(new HttpRequestMessage(HttpMethod.Head, "/"));
        Assert.Equal(HttpStatusCode.OK, head.StatusCode);
        Assert.Empty(await head.Content.ReadAsByteArrayAsync());

        Assert.Equal(HttpStatusCode.NotFound, (await browser.GetAsync("/js/no-such-file.js")).StatusCode);
        // The API behind the page still needs a valid session.
        Assert.Equal(HttpStatusCode.Unauthorized, (await browser.GetAsync("/api/channels")).StatusCode);
    }

    [GeneratedRegex("""(?:import|from)\s*['"](\.{1,2}/[^'"]+)['"]""")]
    private static partial Regex ImportPattern();
}
