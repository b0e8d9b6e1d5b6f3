namespace Loop.Dashboard.Tests;

using System.Globalization;
using System.Text.RegularExpressions;
using Microsoft.Playwright;
using static Microsoft.Playwright.Assertions;

[Collection(DashboardCollection.Name)]
public sealed class UsagePageTests(DashboardFixture fixture)
{
    [Fact]
    public async Task The_cost_chart_has_a_bar_and_the_total_is_what_the_api_says()
    {
        var channelId = (string)(await fixture.Daemon.CreateChannelAsync())["id"]!;
        await fixture.Daemon.PostMessageAsync(channelId, "[[usage in=1200 out=800 cost=0.25]] [[reply that was costly]]");
        var runs = await fixture.Daemon.WaitForFinishedRunsAsync(channelId, 1, TimeSpan.FromSeconds(60));
        Assert.Equal("succeeded", (string)runs[0]["status"]!);
        var totals = await fixture.Daemon.GetObjectAsync("/api/usage");
        var apiCost = decimal.Parse(totals["cost_usd"]!.ToJsonString().Trim('"'), CultureInfo.InvariantCulture);
        Assert.True(apiCost >= 0.25m, $"/api/usage: {totals}");

        await using var session = await fixture.OpenAsync();
        await session.RunAsync(async page =>
        {
            await Ui.GoToAsync(page, "usage", "Usage");
            var chart = page.GetByRole(AriaRole.Img, new() { Name = "Cost per day", Exact = true });
            await Expect(chart).ToBeVisibleAsync();
            Assert.Equal("svg", await chart.EvaluateAsync<string>("e => e.localName"));
            var bars = chart.Locator("rect.bar");
            await Expect(bars.First).ToBeAttachedAsync();
            var heights = await bars.EvaluateAllAsync<double[]>("bars => bars.map(b => b.getBoundingClientRect().height)");
            Assert.Contains(heights, h => h > 0);
            foreach (var other in new[] { "Tokens per day", "Cost by model", "Cost by channel", "Cost by task" })
            {
                await Expect(page.GetByRole(AriaRole.Img, new() { Name = other, Exact = true })).ToBeVisibleAsync();
            }

            // The page's total is the API's, to the precision the page shows.
            var totalCost = page.GetByTestId("usage-total-cost");
            await Expect(totalCost).ToHaveTextAsync(new Regex(@"\d"));
            var shown = await totalCost.InnerTextAsync();
            var number = Regex.Match(shown, @"\d[\d,]*(\.\d+)?");
            Assert.True(number.Success, $"usage-total-cost shows no number: '{shown}'");
            var decimals = number.Groups[1].Success ? number.Groups[1].Value.Length - 1 : 0;
            Assert.Equal(Math.Round(apiCost, decimals, MidpointRounding.AwayFromZero),
                decimal.Parse(number.Value.Replace(",", ""), CultureInfo.InvariantCulture));
            await Expect(page.GetByTestId("usage-total-runs")).ToHaveTextAsync(new Regex($@"(^|\D){(int)totals["runs"]!}(\D|$)"));
            await Expect(page.GetByTestId("usage-total-tokens")).ToHaveTextAsync(new Regex(@"\d"));
            await Expect(page.GetByRole(AriaRole.Table, new() { Name = "Recent calls" })).ToBeVisibleAsync();
            await Screenshots.SaveAsync(page, "usage");
        });
    }

    [Fact]
    public async Task The_day_charts_keep_every_axis_label_inside_even_for_a_large_cost()
    {
        var channelId = (string)(await fixture.Daemon.CreateChannelAsync())["id"]!;
        await fixture.Daemon.PostMessageAsync(channelId, "[[usage in=1200000 out=800000 cost=1234.5]] [[reply that was dear]]");
        await fixture.Daemon.WaitForFinishedRunsAsync(channelId, 1, TimeSpan.FromSeconds(60));

        await using var session = await fixture.OpenAsync();
        await session.RunAsync(async page =>
        {
            await Ui.GoToAsync(page, "usage", "Usage");
            foreach (var name in new[] { "Cost per day", "Tokens per day" })
            {
                var chart = page.GetByRole(AriaRole.Img, new() { Name = name, Exact = true });
                await Expect(chart).ToBeVisibleAsync();
                Assert.Empty(await Ui.LabelsCutOffAsync(chart));
            }
        });
    }

    [Fact]
    public async Task A_budget_set_on_the_page_is_enforced_and_the_page_shows_it_spent()
    {
        var channel = await fixture.Daemon.CreateChannelAsync();
        var channelId = (string)channel["id"]!;

        await using var session = await fixture.OpenAsync();
        await session.RunAsync(async page =>
        {
            await Ui.GoToAsync(page, "usage", "Usage");
            await page.GetByTestId("budget-scope").SelectOptionAsync("channel");
            await page.GetByTestId("budget-target").SelectOptionAsync(channelId);
            await page.GetByLabel("Daily USD").FillAsync("-2");
            await page.GetByRole(AriaRole.Button, new() { Name = "Set budget" }).ClickAsync();
            await Expect(page.Locator(".field-error")).ToContainTextAsync("daily_usd must be a number of USD from 0");

            await page.GetByLabel("Daily USD").FillAsync("0.25");
            await page.GetByRole(AriaRole.Button, new() { Name = "Set budget" }).ClickAsync();
            var row = page.GetByTestId($"budget-{channelId}");
            await Expect(row).ToContainTextAsync($"channel {(string)channel["name"]!}");
            await Expect(row).ToContainTextAsync("$0.00 of $0.25");

            await fixture.Daemon.PostMessageAsync(channelId, "[[reply costly]] [[usage cost=0.3]]");
            await fixture.Daemon.WaitForFinishedRunsAsync(channelId, 1, TimeSpan.FromSeconds(60));
            await page.ReloadAsync();
            await Expect(row).ToContainTextAsync("daily budget spent");
            await Expect(row).ToContainTextAsync("$0.30 of $0.25");
            await Screenshots.SaveAsync(page, "usage-budgets");
        });

        await fixture.Daemon.PostMessageAsync(channelId, "[[reply must not run]]");
        var refused = (await fixture.Daemon.WaitForFinishedRunsAsync(channelId, 2, TimeSpan.FromSeconds(60)))[1];
        Assert.Equal("cancelled", (string)refused["status"]!);
        Assert.StartsWith("Not run: the daily budget of channel", (string)refused["error"]!);
    }
}
