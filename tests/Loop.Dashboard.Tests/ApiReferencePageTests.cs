namespace Loop.Dashboard.Tests;

using System.Collections.Concurrent;
using System.Text.RegularExpressions;
using Microsoft.Playwright;
using static Microsoft.Playwright.Assertions;

/// <summary>The API reference (/scalar/): behind the dashboard's login, and drawn from the daemon alone.</summary>
[Collection(DashboardCollection.Name)]
public sealed class ApiReferencePageTests(DashboardFixture fixture)
{
    [Fact]
    public async Task The_reference_asks_for_a_login_first_then_shows_the_api_with_nothing_loaded_from_elsewhere()
    {
        await DashboardFixture.EnsureAdminAsync(fixture.Daemon);
        await using var session = await fixture.OpenAsync(loggedIn: false);
        await session.RunAsync(async page =>
        {
            var requested = new ConcurrentQueue<string>();
            var failed = new ConcurrentQueue<string>();
            page.Request += (_, request) => requested.Enqueue(request.Url);
            page.RequestFailed += (_, request) => failed.Enqueue($"{request.Url}: {request.Failure}");

            await page.GotoAsync("/scalar/");
            await Expect(Ui.Heading(page, "Log in to Loop")).ToBeVisibleAsync();
            await Ui.Field(page, "Username").FillAsync(DashboardFixture.Username);
            await Ui.Field(page, "Password").FillAsync(DashboardFixture.Password);
            await Ui.Button(page, "Log in").ClickAsync();

            // Back on the reference, which shows the daemon's own endpoints.
            await Expect(page).ToHaveURLAsync(new Regex(@"/scalar/$"));
            await Expect(page.GetByRole(AriaRole.Link, new() { Name = "Log in: sets the session cookie and returns its token" })).ToBeVisibleAsync();
            await Expect(page.GetByRole(AriaRole.Link, new() { Name = "channels", Exact = true })).ToBeVisibleAsync();
            // No toolbar that offers to share the document with Scalar's servers.
            await Expect(page.GetByRole(AriaRole.Region, new() { Name = "Developer Tools" })).ToHaveCountAsync(0);
            await Screenshots.SaveAsync(page, "api-reference");

            var own = new Uri(fixture.Daemon.ApiUrl).GetLeftPart(UriPartial.Authority);
            Assert.Contains(requested, url => url.EndsWith("/scalar/scalar.js", StringComparison.Ordinal));
            Assert.Contains(requested, url => url.EndsWith("/openapi/v1.json", StringComparison.Ordinal));
            Assert.DoesNotContain(requested, url => !url.StartsWith(own, StringComparison.Ordinal) && !url.StartsWith("data:", StringComparison.Ordinal));
            Assert.Empty(failed);
        });
    }

    [Fact]
    public async Task The_tokens_page_links_to_the_reference()
    {
        await using var session = await fixture.OpenAsync();
        await session.RunAsync(async page =>
        {
            await Ui.GoToAsync(page, "tokens", "API tokens");
            var link = page.GetByTestId("api-reference");
            await Expect(link).ToHaveAttributeAsync("href", "/scalar/");
            await link.ClickAsync();
            await Expect(page).ToHaveURLAsync(new Regex(@"/scalar/$"));
            await Expect(page.GetByRole(AriaRole.Link, new() { Name = "The API tokens (never the tokens themselves)" })).ToBeVisibleAsync();
        });
    }
}
