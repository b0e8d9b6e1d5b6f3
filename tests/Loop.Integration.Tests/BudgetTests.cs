namespace Loop.Integration.Tests;

using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Loop.Testing;

/// <summary>Budgets on a real daemon, over runs of the claude double with known costs.</summary>
public sealed class BudgetTests
{
    [Fact]
    public async Task A_spent_daily_budget_refuses_the_next_message_saying_when_it_resets_and_the_ledger_is_the_runs()
    {
        await using var loop = await LoopDaemon.StartAsync();
        var channel = await loop.CreateChannelAsync();
        var id = (string)channel["id"]!;
        var name = (string)channel["name"]!;
        var set = await PutBudgetAsync(loop, $"/api/channels/{id}/budget", new { daily_usd = 0.5m, monthly_usd = 20m });
        Assert.Equal(0.5m, (decimal)set["daily_usd"]!);
        Assert.Equal(0m, (decimal)set["spent_today_usd"]!);
        Assert.Equal(0.5m, (decimal)set["remaining_usd"]!);

        await loop.PostMessageAsync(id, "[[reply first]] [[usage in=10 out=10 cost=0.2]]");
        await loop.WaitForFinishedRunsAsync(id, 1);
        // Tokens and no cost: priced at sonnet 4.5's $3 per million input tokens, $0.30.
        await loop.PostMessageAsync(id, "[[reply second]] [[usage in=100000 out=0 cache_read=0 cache_write=0 cost=0]]");
        await loop.WaitForFinishedRunsAsync(id, 2);

        var spent = await loop.GetObjectAsync($"/api/channels/{id}/budget");
        Assert.Equal(0.5m, (decimal)spent["spent_today_usd"]!);
        Assert.Equal(0.5m, (decimal)spent["spent_this_month_usd"]!);
        Assert.Equal("daily", (string?)spent["spent"]);
        Assert.Equal(0m, (decimal)spent["remaining_usd"]!);
        var tomorrow = DateTime.UtcNow.Date.AddDays(1);
        Assert.Equal(tomorrow, ((DateTimeOffset)spent["day_resets_at"]!).UtcDateTime);
        Assert.Equal(new DateTime(DateTime.UtcNow.Year, DateTime.UtcNow.Month, 1).AddMonths(1), ((DateTimeOffset)spent["month_resets_at"]!).UtcDateTime);
        // The ledger is the runs: what the budget counts is what the usage report of the channel says.
        var usage = await loop.GetObjectAsync($"/api/usage?channel_id={id}");
        Assert.Equal((decimal)usage["cost_usd"]!, (decimal)spent["spent_today_usd"]!);

        await loop.PostMessageAsync(id, "[[reply third, which must not run]]");
        var runs = await loop.WaitForFinishedRunsAsync(id, 3);
        Assert.Equal("cancelled", (string)runs[2]["status"]!);
        Assert.Null(runs[2]["started_at"]?.GetValue<DateTimeOffset?>());
        var messages = await loop.GetArrayAsync($"/api/channels/{id}/messages");
        var refusal = (string)messages[^1]!["content"]!;
        Assert.StartsWith($"Not run: the daily budget of channel {name} ($0.50) is spent ($0.50). It resets at {tomorrow:yyyy-MM-dd} 00:00 UTC", refusal);
        Assert.Equal("system", (string)messages[^1]!["role"]!);
        Assert.DoesNotContain(messages, m => ((string)m!["content"]!).Contains("which must not run", StringComparison.Ordinal) && (string)m["role"]! == "agent");

        // Raising the limit lets the channel talk again.
        await PutBudgetAsync(loop, $"/api/channels/{id}/budget", new { daily_usd = 5m });
        await loop.PostMessageAsync(id, "[[reply fourth]]");
        var fourth = (await loop.WaitForFinishedRunsAsync(id, 4))[3];
        Assert.Equal("succeeded", (string)fourth["status"]!);
    }

    [Fact]
    public async Task A_run_gets_what_is_left_as_max_budget_usd_and_is_stopped_by_it()
    {
        await using var loop = await LoopDaemon.StartAsync();
        var id = (string)(await loop.CreateChannelAsync())["id"]!;
        // The double's runs cost $0.0042 unless told: these cost nothing, so the sums stay round.
        const string Free = "[[usage in=0 out=0 cache_read=0 cache_write=0 cost=0]]";
        await loop.PostMessageAsync(id, "[[budget]] " + Free);
        Assert.Equal("budget: none", (string)(await loop.WaitForFinishedRunsAsync(id, 1))[0]["reply"]!);

        await PutBudgetAsync(loop, $"/api/channels/{id}/budget", new { monthly_usd = 4m });
        await loop.PostMessageAsync(id, "[[reply spend]] [[usage cost=1.25]]");
        await loop.WaitForFinishedRunsAsync(id, 2);
        // 4 - 1.25 left this month.
        await loop.PostMessageAsync(id, "[[budget]] " + Free);
        Assert.Equal("budget: 2.75", (string)(await loop.WaitForFinishedRunsAsync(id, 3))[2]["reply"]!);

        // A run that would cost more than is left is stopped by claude at the limit.
        await loop.PostMessageAsync(id, "[[reply too dear]] [[usage cost=3]]");
        var stopped = (await loop.WaitForFinishedRunsAsync(id, 4))[3];
        Assert.Equal("failed", (string)stopped["status"]!);
        Assert.Equal("stopped at the budget left for it ($2.75): the agent spent $3.00", (string)stopped["error"]!);
    }

    [Fact]
    public async Task The_80_percent_warning_comes_once_beneath_the_reply_and_in_the_activity_feed()
    {
        await using var loop = await LoopDaemon.StartAsync();
        var channel = await loop.CreateChannelAsync();
        var id = (string)channel["id"]!;
        await PutBudgetAsync(loop, $"/api/channels/{id}/budget", new { daily_usd = 1m });

        await loop.PostMessageAsync(id, "[[reply under]] [[usage cost=0.5]]");
        await loop.WaitForFinishedRunsAsync(id, 1);
        await loop.PostMessageAsync(id, "[[reply over eighty]] [[usage cost=0.35]]");
        await loop.WaitForFinishedRunsAsync(id, 2);
        await loop.PostMessageAsync(id, "[[reply over ninety]] [[usage cost=0.05]]");
        await loop.WaitForFinishedRunsAsync(id, 3);

        var replies = (await loop.GetArrayAsync($"/api/channels/{id}/messages")).Where(m => (string)m!["role"]! == "agent").Select(m => (string)m!["content"]!).ToList();
        Assert.Equal("under", replies[0]);
        Assert.Equal($"over eighty\n\nLoop: 85% of the daily budget of channel {(string)channel["name"]!} is spent ($0.85 of $1.00); "
            + $"it resets at {DateTime.UtcNow.Date.AddDays(1):yyyy-MM-dd} 00:00 UTC.", replies[1]);
        Assert.Equal("over ninety", replies[2]);
        var warnings = (await loop.GetArrayAsync("/api/events/recent?limit=200")).Where(e => (string)e!["kind"]! == "budget.warning").ToList();
        var warning = Assert.Single(warnings)!;
        Assert.Equal(id, (string)warning["channel_id"]!);
        Assert.StartsWith("85% of the daily budget", (string)warning["text"]!);
    }

    [Fact]
    public async Task A_task_whose_budget_is_spent_pauses_and_the_activity_feed_says_why()
    {
        await using var loop = await LoopDaemon.StartAsync();
        var id = (string)(await loop.CreateChannelAsync())["id"]!;
        var task = await loop.CreateTaskAsync(new { channel_id = id, name = "dear-report", type = "interval", schedule = "2s", prompt = "[[reply report]] [[usage cost=0.3]]", enabled = false });
        var taskId = (string)task["id"]!;
        await PutBudgetAsync(loop, $"/api/tasks/{taskId}/budget", new { daily_usd = 0.5m });
        using (var enable = await loop.Http.PatchAsJsonAsync($"/api/tasks/{taskId}", new { enabled = true }))
        {
            await LoopDaemon.ReadObjectAsync(enable, HttpStatusCode.OK);
        }

        // The first run spends 0.3; the second may spend the 0.2 left and is stopped by claude there (its
        // 0.3 still counts: a run overshoots by at most one model call); every run after is refused.
        var runs = await loop.PollAsync(
            async () => (await loop.GetArrayAsync($"/api/tasks/{taskId}/runs")).Select(r => r!.AsObject()).Reverse().ToList(),
            r => r.Count(x => (string)x["status"]! == "cancelled") >= 1, TimeSpan.FromSeconds(90), r => $"no run was refused: {r.Count} runs");
        var summary = string.Join("\n", runs.Select(r => $"{r["status"]} {r["error"]}"));
        Assert.True(runs[0]["status"]!.GetValue<string>() == "succeeded" && runs[1]["status"]!.GetValue<string>() == "failed", summary);
        Assert.Equal("stopped at the budget left for it ($0.20): the agent spent $0.30", (string)runs[1]["error"]!);
        var refused = runs[2];
        Assert.StartsWith("Task dear-report paused: the daily budget of task dear-report ($0.50) is spent ($0.60).", (string)refused["error"]!);

        var events = await loop.GetArrayAsync("/api/events/recent?limit=500");
        var spent = Assert.Single(events, e => (string)e!["kind"]! == "budget.spent")!;
        Assert.StartsWith("The daily budget of task dear-report ($0.50) is spent ($0.60). Until it resets at", (string)spent["text"]!);
        Assert.EndsWith("the task pauses.", (string)spent["text"]!);
        var budget = await loop.GetObjectAsync($"/api/tasks/{taskId}/budget");
        Assert.Equal(0.6m, (decimal)budget["spent_today_usd"]!);
    }

    [Fact]
    public async Task Bad_limits_are_refused_naming_the_field_and_an_agent_cannot_raise_its_own_budget()
    {
        await using var loop = await LoopDaemon.StartAsync();
        var id = (string)(await loop.CreateChannelAsync())["id"]!;
        foreach (var (body, field) in new (object, string)[]
        {
            (new { daily_usd = -1 }, "daily_usd"),
            (new { monthly_usd = 2_000_000 }, "monthly_usd"),
            (new { daily_usd = 10, monthly_usd = 5 }, "daily_usd"),
            (new { daily_usd = "five" }, "daily_usd"),
        })
        {
            using var response = await loop.Http.PutAsJsonAsync($"/api/channels/{id}/budget", body);
            var text = await response.Content.ReadAsStringAsync();
            Assert.True(response.StatusCode == HttpStatusCode.BadRequest, $"{JsonSerializerText(body)}: {(int)response.StatusCode} {text}");
            Assert.Contains(field, text);
            Assert.DoesNotContain("System.", text);
        }
        using (var missing = await loop.Http.PutAsJsonAsync("/api/connectors/nope/budget", new { daily_usd = 1 }))
        {
            Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
        }

        var token = (string)(await loop.GetObjectAsync($"/api/channels/{id}/token"))["token"]!;
        using var agent = new HttpClient { BaseAddress = new Uri(loop.ApiUrl) };
        agent.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        using (var read = await agent.GetAsync($"/api/channels/{id}/budget"))
        {
            Assert.Equal(HttpStatusCode.OK, read.StatusCode);
        }
        using (var raise = await agent.PutAsJsonAsync($"/api/channels/{id}/budget", new { daily_usd = 1000 }))
        {
            Assert.Equal(HttpStatusCode.Forbidden, raise.StatusCode);
            Assert.Contains("a channel token may not change a budget", await raise.Content.ReadAsStringAsync());
        }

        await PutBudgetAsync(loop, $"/api/channels/{id}/budget", new { daily_usd = 1 });
        Assert.Single(await loop.GetArrayAsync("/api/budgets"));
        using (var removed = await loop.Http.DeleteAsync($"/api/channels/{id}/budget"))
        {
            Assert.Equal(HttpStatusCode.OK, removed.StatusCode);
        }
        Assert.Empty(await loop.GetArrayAsync("/api/budgets"));
    }

    private static string JsonSerializerText(object body) => System.Text.Json.JsonSerializer.Serialize(body);

    private static async Task<JsonObject> PutBudgetAsync(LoopDaemon loop, string path, object body)
    {
        using var response = await loop.Http.PutAsJsonAsync(path, body);
        return await LoopDaemon.ReadObjectAsync(response, HttpStatusCode.OK);
    }
}
