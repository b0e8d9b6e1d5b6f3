namespace Loop.Integration.Tests;

using System.Net;
using Loop.Testing;

/// <summary>The Orleans dashboard that <c>loop serve</c> serves under /orleans, behind Loop's login.</summary>
public sealed class OrleansDashboardTests
{
    [Fact]
    public async Task Users_see_the_orleans_dashboard_anonymous_callers_and_channel_tokens_do_not()
    {
        await using var loop = await LoopDaemon.StartAsync();

        // A signed-in user: the dashboard's page, and its data shows the node's silo.
        using var page = await loop.Http.GetAsync("/orleans/");
        Assert.Equal(HttpStatusCode.OK, page.StatusCode);
        Assert.Contains("<html", await page.Content.ReadAsStringAsync(), StringComparison.OrdinalIgnoreCase);
        using var script = await loop.Http.GetAsync("/orleans/index.min.js");
        Assert.Equal(HttpStatusCode.OK, script.StatusCode);
        Assert.Contains("javascript", script.Content.Headers.ContentType?.MediaType);
        using var cluster = await loop.Http.GetAsync("/orleans/DashboardCounters");
        Assert.Equal(HttpStatusCode.OK, cluster.StatusCode);
        Assert.Contains("totalActivationCount", await cluster.Content.ReadAsStringAsync(), StringComparison.OrdinalIgnoreCase);

        using var anonymous = new HttpClient { BaseAddress = new Uri(loop.ApiUrl) };
        foreach (var path in new[] { "/orleans/", "/orleans/DashboardCounters" })
        {
            using var refused = await anonymous.GetAsync(path);
            Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
            Assert.DoesNotContain("totalActivationCount", await refused.Content.ReadAsStringAsync(), StringComparison.OrdinalIgnoreCase);
        }

        var channel = (string)(await loop.CreateChannelAsync())["id"]!;
        var token = (string)(await loop.GetObjectAsync($"/api/channels/{channel}/token"))["token"]!;
        anonymous.DefaultRequestHeaders.Authorization = new("Bearer", token);
        using var forbidden = await anonymous.GetAsync("/orleans/DashboardCounters");
        Assert.Equal(HttpStatusCode.Forbidden, forbidden.StatusCode);
    }
}
