namespace Loop.Dashboard.Tests;

using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Text.RegularExpressions;
using Microsoft.Playwright;
using static Microsoft.Playwright.Assertions;

[Collection(DashboardCollection.Name)]
public sealed class TokensPageTests(DashboardFixture fixture)
{
    [Fact]
    public async Task A_new_token_is_shown_once_works_as_a_bearer_and_stops_working_when_revoked()
    {
        var tokenName = "ci script " + Guid.NewGuid().ToString("N")[..8];
        await using var session = await fixture.OpenAsync();
        await session.RunAsync(async page =>
        {
            Ui.AcceptDialogs(page);
            await Ui.GoToAsync(page, "tokens", "API tokens");
            await Ui.Field(page, "Token name").FillAsync(tokenName);
            await Ui.Button(page, "Create token").ClickAsync();
            var shown = page.GetByTestId("new-token");
            await Expect(shown).ToContainTextAsync("loopat_");
            await Expect(page.GetByText("copy it now: it will not be shown again")).ToBeVisibleAsync();
            var token = Regex.Match(await shown.InnerTextAsync(), @"loopat_[A-Za-z0-9_\-]+").Value;
            var row = page.GetByRole(AriaRole.Table).GetByRole(AriaRole.Row).Filter(new() { HasText = tokenName });
            await Expect(row).ToHaveCountAsync(1);
            // Created: with its date, as the list is read days later (en-US, UTC in this browser).
            var listed = (await (await page.APIRequest.GetAsync("/api/auth/tokens")).JsonAsync())!.Value;
            var created = listed.EnumerateArray().Single(t => t.GetProperty("name").GetString() == tokenName).GetProperty("created_at").GetDateTimeOffset();
            var day = created.UtcDateTime.ToString("M/d/yyyy", CultureInfo.InvariantCulture);
            await Expect(row.GetByRole(AriaRole.Cell).Nth(1)).ToHaveTextAsync(new Regex($@"^{Regex.Escape(day)},\s\d{{1,2}}:\d{{2}}:\d{{2}}\s[AP]M$"));
            await Screenshots.SaveAsync(page, "tokens");

            using var script = new HttpClient { BaseAddress = new Uri(fixture.Daemon.ApiUrl) };
            script.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
            Assert.Equal(HttpStatusCode.OK, (await script.GetAsync("/api/channels")).StatusCode);

            // Shown once: after a reload the list has it, the page does not show the token again.
            await page.ReloadAsync();
            await Expect(Ui.Heading(page, "API tokens")).ToBeVisibleAsync();
            await Expect(row).ToHaveCountAsync(1);
            await Expect(shown).ToHaveCountAsync(0);
            Assert.DoesNotContain(token, await page.ContentAsync());

            await row.GetByRole(AriaRole.Button, new() { Name = "Revoke", Exact = true }).ClickAsync();
            await Expect(row).ToHaveCountAsync(0);
            Assert.Equal(HttpStatusCode.Unauthorized, (await script.GetAsync("/api/channels")).StatusCode);
        });
    }
}
