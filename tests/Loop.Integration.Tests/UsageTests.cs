namespace Loop.Integration.Tests;

using System.Net;
using System.Net.Http.Headers;
using System.Text.Json.Nodes;
using Loop.Testing;

/// <summary>The usage reports of a real daemon, over runs of the claude double with known usage.</summary>
public sealed class UsageTests
{
    [Fact]
    public async Task Usage_reports_add_up_the_runs_and_price_token_only_runs_from_the_table()
    {
        await using var loop = await LoopDaemon.StartAsync();
        var alpha = (string)(await loop.CreateChannelAsync())["id"]!;
        var beta = (string)(await loop.CreateChannelAsync())["id"]!;

        // One message at a time, so each is its own run. The double reports claude-sonnet-4-5-20250929.
        await loop.PostMessageAsync(alpha, "[[reply one]] [[usage in=100 out=200 cache_read=300 cache_write=400 cost=0.0123]]");
        await loop.WaitForFinishedRunsAsync(alpha, 1);
        await loop.PostMessageAsync(alpha, "[[reply two]] [[usage in=10 out=20 cache_read=0 cache_write=0 cost=0.1]]");
        await loop.WaitForFinishedRunsAsync(alpha, 2);
        // Tokens but no cost: priced at the default sonnet 4.5 rates, $3 / $15 / $3.75 / $0.30 per million.
        await loop.PostMessageAsync(beta, "[[reply three]] [[usage in=1000000 out=100000 cache_read=200000 cache_write=10000 cost=0]]");
        await loop.WaitForFinishedRunsAsync(beta, 1);

        var totals = await loop.GetObjectAsync("/api/usage");
        Assert.Equal(3, (long)totals["runs"]!);
        Assert.Equal(1_000_110, (long)totals["input_tokens"]!);
        Assert.Equal(100_220, (long)totals["output_tokens"]!);
        Assert.Equal(200_300, (long)totals["cache_read_input_tokens"]!);
        Assert.Equal(10_400, (long)totals["cache_creation_input_tokens"]!);
        Assert.Equal(4.7098m, (decimal)totals["cost_usd"]!);
        Assert.Equal(4.5975m, (decimal)totals["estimated_cost_usd"]!);
        Assert.Equal(0, (long)totals["unpriced_runs"]!);

        var alphaOnly = await loop.GetObjectAsync($"/api/usage?channel_id={alpha}");
        Assert.Equal(0.1123m, (decimal)alphaOnly["cost_usd"]!);
        var future = await loop.GetObjectAsync($"/api/usage?from={DateTime.UtcNow.AddDays(1):yyyy-MM-dd}");
        Assert.Equal(0, (long)future["runs"]!);

        var daily = await loop.GetArrayAsync("/api/usage/daily?days=7");
        Assert.Equal(7, daily.Count);
        Assert.Equal(DateTime.UtcNow.ToString("yyyy-MM-dd"), (string)daily[^1]!["key"]!);
        Assert.Equal(3, (long)daily[^1]!["usage"]!["runs"]!);
        Assert.Equal(4.7098m, (decimal)daily[^1]!["usage"]!["cost_usd"]!);
        Assert.All(daily.Take(6), d => Assert.Equal(0, (long)d!["usage"]!["runs"]!));

        var models = await loop.GetArrayAsync("/api/usage/models");
        var model = Assert.Single(models)!;
        Assert.Equal("claude-sonnet-4-5-20250929", (string)model["key"]!);
        Assert.Equal(3, (long)model["usage"]!["runs"]!);

        var channels = (await loop.GetArrayAsync("/api/usage/channels")).ToDictionary(c => (string)c!["key"]!, c => c!["usage"]!);
        Assert.Equal(2, (long)channels[alpha]["runs"]!);
        Assert.Equal(0.1123m, (decimal)channels[alpha]["cost_usd"]!);
        Assert.Equal(4.5975m, (decimal)channels[beta]["cost_usd"]!);

        var tasks = await loop.GetArrayAsync("/api/usage/tasks");
        var chat = Assert.Single(tasks)!;
        Assert.Null(chat["key"]);
        Assert.Equal(3, (long)chat["usage"]!["runs"]!);

        var firstPage = await loop.GetArrayAsync("/api/usage/calls?limit=2");
        Assert.Equal([beta, alpha], firstPage.Select(c => (string)c!["channel_id"]!));
        Assert.True((bool)firstPage[0]!["cost_estimated"]!);
        Assert.Equal(4.5975m, (decimal)firstPage[0]!["cost_usd"]!);
        Assert.Equal(0.1m, (decimal)firstPage[1]!["cost_usd"]!);
        var secondPage = await loop.GetArrayAsync($"/api/usage/calls?limit=2&before={(string)firstPage[1]!["run_id"]!}");
        var oldest = Assert.Single(secondPage)!;
        Assert.Equal(0.0123m, (decimal)oldest["cost_usd"]!);
        Assert.Equal(100, (long)oldest["input_tokens"]!);
        Assert.False((bool)oldest["cost_estimated"]!);
    }

    [Fact]
    public async Task Bad_parameters_are_refused_naming_the_field_and_a_channel_token_sees_only_its_channel()
    {
        await using var loop = await LoopDaemon.StartAsync();
        var alpha = (string)(await loop.CreateChannelAsync())["id"]!;
        var beta = (string)(await loop.CreateChannelAsync())["id"]!;
        await loop.PostMessageAsync(alpha, "[[reply a]] [[usage in=1 out=1 cost=0.5]]");
        await loop.PostMessageAsync(beta, "[[reply b]] [[usage in=1 out=1 cost=0.25]]");
        await loop.WaitForFinishedRunsAsync(alpha, 1);
        await loop.WaitForFinishedRunsAsync(beta, 1);

        foreach (var (path, field) in new[]
        {
            ("/api/usage?from=yesterday", "from"),
            ("/api/usage/models?from=2025-06-02&to=2025-06-01", "to"),
            ("/api/usage/daily?days=0", "days"),
            ("/api/usage/daily?days=many", "days"),
            ("/api/usage/calls?limit=0", "limit"),
            ("/api/usage/calls?limit=ten", "limit"),
        })
        {
            using var response = await loop.Http.GetAsync(path);
            var body = await response.Content.ReadAsStringAsync();
            Assert.True(response.StatusCode == HttpStatusCode.BadRequest, $"{path}: {(int)response.StatusCode} {body}");
            Assert.Contains($"\"{field}\"", body);
        }

        var token = (string)(await loop.GetObjectAsync($"/api/channels/{alpha}/token"))["token"]!;
        using var agent = new HttpClient { BaseAddress = new Uri(loop.ApiUrl) };
        agent.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);

        var own = JsonNode.Parse(await agent.GetStringAsync("/api/usage"))!;
        Assert.Equal(1, (long)own["runs"]!);
        Assert.Equal(0.5m, (decimal)own["cost_usd"]!);
        var ownChannels = JsonNode.Parse(await agent.GetStringAsync("/api/usage/channels"))!.AsArray();
        Assert.Equal([alpha], ownChannels.Select(c => (string)c!["key"]!));
        using var other = await agent.GetAsync($"/api/usage/calls?channel_id={beta}");
        Assert.Equal(HttpStatusCode.Forbidden, other.StatusCode);
        Assert.Equal(0.75m, (decimal)(await loop.GetObjectAsync("/api/usage"))["cost_usd"]!);
    }
}
