namespace Loop.Dashboard.Tests;

using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Loop.Testing;
using Microsoft.Playwright;
using static Microsoft.Playwright.Assertions;

/// <summary>Setup, login and logout screens.</summary>
[Collection(DashboardCollection.Name)]
public sealed class AuthPagesTests(DashboardFixture fixture)
{
    [Fact]
    public async Task Setup_page_asks_for_the_setup_code_creates_the_admin_and_lands_on_chat_and_checks_the_confirmation_first()
    {
        // Its own daemon: the shared one may have its admin already, and this page shows only before.
        await using var fresh = await LoopDaemon.StartAsync();
        await using var session = await fixture.OpenAsync(loggedIn: false, daemon: fresh);
        await session.RunAsync(async page =>
        {
            var setupCalls = 0;
            page.Request += (_, request) =>
            {
                if (new Uri(request.Url).AbsolutePath == "/api/auth/setup")
                {
                    Interlocked.Increment(ref setupCalls);
                }
            };
            await page.GotoAsync("/");
            await Expect(Ui.Heading(page, "Create the admin account")).ToBeVisibleAsync();
            await Expect(Ui.MainNav(page)).ToHaveCountAsync(0);
            await Screenshots.SaveAsync(page, "setup");

            var setupCode = Ui.Field(page, "Setup code");
            var username = Ui.Field(page, "Username");
            var password = Ui.Field(page, "Password");
            var confirm = Ui.Field(page, "Confirm password");
            // The page says where the code is: the daemon's log and its file.
            await Expect(page.GetByText("~/.loop/secrets/setup-code")).ToBeVisibleAsync();
            await username.FillAsync(DashboardFixture.Username);
            await password.FillAsync(DashboardFixture.Password);
            await confirm.FillAsync(DashboardFixture.Password + " typo");
            await Ui.Button(page, "Create account").ClickAsync();
            await Ui.ExpectFieldErrorAsync(setupCode, "enter the setup code");
            await setupCode.FillAsync("AAAA-AAAA");
            await Ui.Button(page, "Create account").ClickAsync();
            await Ui.ExpectFieldErrorAsync(confirm, "the passwords do not match");
            Assert.Equal(0, setupCalls);
            Assert.True((bool)(await AuthStatusAsync(fresh))["setup_required"]!);

            // A wrong code is the API's to refuse, in its words.
            await confirm.FillAsync(DashboardFixture.Password);
            await Ui.Button(page, "Create account").ClickAsync();
            await Expect(page.GetByRole(AriaRole.Alert)).ToContainTextAsync("wrong setup code");
            Assert.True((bool)(await AuthStatusAsync(fresh))["setup_required"]!);
            await setupCode.FillAsync(fresh.SetupCode!);

            // A short password is the API's to refuse; its words show next to "Password".
            using (var anonymous = new HttpClient { BaseAddress = new Uri(fresh.ApiUrl) })
            {
                var refused = await LoopDaemon.ReadObjectAsync(
                    await anonymous.PostAsJsonAsync("/api/auth/setup", new { username = DashboardFixture.Username, password = "short", setup_code = fresh.SetupCode }),
                    HttpStatusCode.BadRequest);
                await password.FillAsync("short");
                await confirm.FillAsync("short");
                await Ui.Button(page, "Create account").ClickAsync();
                await Ui.ExpectFieldErrorAsync(password, (string)refused["detail"]!);
            }
            Assert.True((bool)(await AuthStatusAsync(fresh))["setup_required"]!);

            await password.FillAsync(DashboardFixture.Password);
            await confirm.FillAsync(DashboardFixture.Password);
            await Ui.Button(page, "Create account").ClickAsync();
            await Expect(Ui.Heading(page, "Chat")).ToBeVisibleAsync();
            await Expect(page).ToHaveURLAsync(new Regex("#/chat$"));
            await Expect(Ui.MainNav(page)).ToBeVisibleAsync();
            Assert.False((bool)(await AuthStatusAsync(fresh))["setup_required"]!);
            Assert.Null(fresh.SetupCode); // used up
            // Logged in by the setup: the browser's cookie is a session.
            var status = await (await session.Context.APIRequest.GetAsync("/api/auth/status")).JsonAsync();
            Assert.True(status!.Value.GetProperty("authenticated").GetBoolean());
        });
    }

    [Fact]
    public async Task Login_page_shows_the_apis_words_for_a_wrong_password_and_lands_on_chat()
    {
        await DashboardFixture.EnsureAdminAsync(fixture.Daemon);
        await using var session = await fixture.OpenAsync(loggedIn: false);
        await session.RunAsync(async page =>
        {
            await page.GotoAsync("/");
            await Expect(Ui.Heading(page, "Log in to Loop")).ToBeVisibleAsync();
            await Expect(Ui.MainNav(page)).ToHaveCountAsync(0);
            await Screenshots.SaveAsync(page, "login");

            await Ui.Field(page, "Username").FillAsync(DashboardFixture.Username);
            await Ui.Field(page, "Password").FillAsync("not the password");
            await Ui.Button(page, "Log in").ClickAsync();
            await Expect(page.GetByRole(AriaRole.Alert)).ToContainTextAsync("wrong username or password");
            await Expect(Ui.Heading(page, "Log in to Loop")).ToBeVisibleAsync();

            await Ui.Field(page, "Password").FillAsync(DashboardFixture.Password);
            await Ui.Button(page, "Log in").ClickAsync();
            await Expect(Ui.Heading(page, "Chat")).ToBeVisibleAsync();
            foreach (var link in new[] { "Chat", "Activity", "Channels", "Tasks", "Usage", "Runtime", "Tokens" })
            {
                await Expect(Ui.MainNav(page).GetByRole(AriaRole.Link, new() { Name = link, Exact = true })).ToBeVisibleAsync();
            }
        });
    }

    [Fact]
    public async Task Log_out_ends_the_session_and_shows_the_login_screen()
    {
        await using var session = await fixture.OpenAsync();
        await session.RunAsync(async page =>
        {
            await Ui.GoToAsync(page, "chat", "Chat");
            await Ui.Button(page, "Log out").ClickAsync();
            await Expect(Ui.Heading(page, "Log in to Loop")).ToBeVisibleAsync();
            await Expect(Ui.MainNav(page)).ToHaveCountAsync(0);
            var status = await (await session.Context.APIRequest.GetAsync("/api/auth/status")).JsonAsync();
            Assert.False(status!.Value.GetProperty("authenticated").GetBoolean());

            // Also after a reload: the session is gone on the server, not only in the page.
            await page.ReloadAsync();
            await Expect(Ui.Heading(page, "Log in to Loop")).ToBeVisibleAsync();
        });
    }

    private static async Task<JsonObject> AuthStatusAsync(LoopDaemon daemon)
    {
        using var anonymous = new HttpClient { BaseAddress = new Uri(daemon.ApiUrl) };
        return await LoopDaemon.ReadObjectAsync(await anonymous.GetAsync("/api/auth/status"), HttpStatusCode.OK);
    }

    [Fact]
    public async Task A_script_that_fails_to_download_once_is_fetched_again_instead_of_leaving_the_page_loading()
    {
        await using var session = await fixture.OpenAsync(loggedIn: false);
        await session.RunAsync(async page =>
        {
            // The first request for one of the app's modules fails, as in a dropped connection.
            var failed = 0;
            await page.RouteAsync("**/js/pages/tokens.js", async route =>
            {
                if (Interlocked.Increment(ref failed) == 1)
                {
                    await route.AbortAsync("connectionreset");
                }
                else
                {
                    await route.ContinueAsync();
                }
            });
            await page.GotoAsync("/");
            await Expect(Ui.Heading(page, "Log in to Loop")).ToBeVisibleAsync();
            Assert.True(failed >= 2, $"tokens.js was requested {failed} time(s)");
        });
    }
}
