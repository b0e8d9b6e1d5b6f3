namespace Loop.Dashboard.Tests;

using System.Net;
using System.Net.Http.Json;
using System.Text.RegularExpressions;
using Loop.Testing;
using Microsoft.Playwright;
using static Microsoft.Playwright.Assertions;

[Collection(DashboardCollection.Name)]
public sealed class ActivityPageTests(DashboardFixture fixture)
{
    [Fact]
    public async Task The_live_feed_shows_a_run_posted_through_the_api_newest_on_top()
    {
        await using var session = await fixture.OpenAsync();
        await session.RunAsync(async page =>
        {
            var name = "activity-" + Guid.NewGuid().ToString("N")[..8];
            using var created = await fixture.Daemon.Http.PostAsJsonAsync("/api/channels", new { name });
            var channelId = (string)(await LoopDaemon.ReadObjectAsync(created, HttpStatusCode.Created))["id"]!;

            await Ui.GoToAsync(page, "activity", "Activity");
            // Connected to the feed before anything happens, so the page can only learn of it live.
            await Expect(Ui.LiveStatus(page)).ToHaveTextAsync("live");
            await fixture.Daemon.PostMessageAsync(channelId, "[[sleep 1]] [[reply activity reply]]");

            var feed = page.GetByRole(AriaRole.Log, new() { Name = "Live feed", Exact = true });
            var ofChannel = feed.Locator("li").Filter(new() { HasText = name });
            await Expect(ofChannel.And(page.Locator("li[data-kind='run.finished']"))).ToHaveCountAsync(1, new() { Timeout = Ui.RunTimeout });
            await Expect(ofChannel.And(page.Locator("li[data-kind='run.queued']"))).ToHaveCountAsync(1);
            var kinds = await ofChannel.EvaluateAllAsync<string[]>("items => items.map(i => i.dataset.kind)");
            Assert.True(Array.IndexOf(kinds, "run.finished") < Array.IndexOf(kinds, "run.queued"),
                $"newest on top, but the channel's events read top to bottom: {string.Join(", ", kinds)}");
            await Screenshots.SaveAsync(page, "activity");

            // The filter: a run that succeeded is no error.
            var show = page.GetByRole(AriaRole.Combobox, new() { Name = "Show", Exact = true });
            var shown = ofChannel.Filter(new() { Visible = true });
            await show.SelectOptionAsync("errors");
            await Expect(shown).ToHaveCountAsync(0);
            await show.SelectOptionAsync("runs");
            await Expect(shown.And(page.Locator("li[data-kind='run.finished']"))).ToHaveCountAsync(1);
        });
    }

    [Fact]
    public async Task A_cancelled_run_shows_as_cancelled_and_is_no_error()
    {
        var channel = await fixture.Daemon.CreateChannelAsync();
        var channelId = (string)channel["id"]!;
        await using var session = await fixture.OpenAsync();
        await session.RunAsync(async page =>
        {
            await Ui.GoToAsync(page, "activity", "Activity");
            await Expect(Ui.LiveStatus(page)).ToHaveTextAsync("live");
            await fixture.Daemon.PostMessageAsync(channelId, "[[sleep 60]] [[reply too late]]");
            var run = await fixture.Daemon.WaitForRunningAsync(channelId);
            using var cancelled = await fixture.Daemon.Http.PostAsync($"/api/runs/{run["id"]}/cancel", null);
            Assert.Equal(HttpStatusCode.Accepted, cancelled.StatusCode);

            var feed = page.GetByRole(AriaRole.Log, new() { Name = "Live feed", Exact = true });
            var end = feed.Locator("li[data-kind='run.error']").Filter(new() { HasText = (string)channel["name"]! });
            await Expect(end.Locator(".kind")).ToHaveTextAsync(new Regex("^run cancelled$", RegexOptions.IgnoreCase), new() { Timeout = Ui.RunTimeout });
            var show = page.GetByRole(AriaRole.Combobox, new() { Name = "Show", Exact = true });
            await show.SelectOptionAsync("errors");
            await Expect(end).ToBeHiddenAsync();
        });
    }
}
