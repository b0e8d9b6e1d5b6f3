namespace Loop.Api.Tests;

using System.Net;
using System.Text.RegularExpressions;

/// <summary>/scalar/: the API reference page, for users of the daemon, with nothing from elsewhere.</summary>
[Collection(ApiNodeCollection.Name)]
public sealed partial class ApiReferencePageTests(ApiNode node)
{
    [Fact]
    public async Task A_browser_that_is_not_logged_in_is_sent_to_the_login_page()
    {
        using var anonymous = node.Anonymous();
        using var page = new HttpRequestMessage(HttpMethod.Get, "/scalar/");
        page.Headers.Accept.ParseAdd("text/html,application/xhtml+xml");
        using var redirected = await anonymous.SendAsync(page);
        Assert.Equal(HttpStatusCode.Redirect, redirected.StatusCode);
        Assert.Equal("/?next=%2Fscalar%2F", redirected.Headers.Location?.OriginalString);

        // The dashboard's page, which shows the login form and comes back after it.
        using var login = await anonymous.GetAsync("/");
        Assert.Equal(HttpStatusCode.OK, login.StatusCode);
        Assert.Contains("/js/main.js", await login.Content.ReadAsStringAsync(), StringComparison.Ordinal);

        // Its script is not for strangers either.
        using var script = await anonymous.GetAsync("/scalar/scalar.js");
        Assert.Equal(HttpStatusCode.Unauthorized, script.StatusCode);
    }

    [Fact]
    public async Task A_logged_in_user_gets_the_reference_and_everything_it_loads_from_the_daemon()
    {
        using var browser = await node.LoggedInBrowserAsync();
        using var response = await browser.GetAsync("/scalar/");
        var html = await response.Content.ReadAsStringAsync();
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);

        var pageUrl = new Uri(node.BaseAddress, "/scalar/");
        var loaded = AssetReference().Matches(html).Select(m => new Uri(pageUrl, m.Groups["url"].Value)).ToList();
        Assert.NotEmpty(loaded);
        foreach (var url in loaded)
        {
            Assert.True(url.Scheme == pageUrl.Scheme && url.Authority == pageUrl.Authority, $"the page loads {url}, which is not the daemon");
            using var asset = await browser.GetAsync(url);
            Assert.True(asset.StatusCode == HttpStatusCode.OK, $"{url}: {(int)asset.StatusCode}");
        }
        // No other site is named anywhere on the page (a CDN, fonts, telemetry).
        var own = node.BaseAddress.GetLeftPart(UriPartial.Authority);
        Assert.DoesNotContain(AbsoluteUrl().Matches(html), m => !m.Value.StartsWith(own, StringComparison.Ordinal));
        // The document it shows is the daemon's (a path its script resolves against the daemon's root).
        Assert.Contains("\"openapi/v1.json\"", html, StringComparison.Ordinal);
    }

    [GeneratedRegex("""<(?:script|link)\b[^>]*?\b(?:src|href)\s*=\s*["'](?<url>[^"']+)["']""", RegexOptions.IgnoreCase)]
    private static partial Regex AssetReference();

    [GeneratedRegex("""https?://[^\s"'<>)]+""", RegexOptions.IgnoreCase)]
    private static partial Regex AbsoluteUrl();
}
