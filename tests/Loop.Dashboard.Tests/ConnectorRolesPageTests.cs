namespace Loop.Dashboard.Tests;

using System.Net;
using System.Net.Http.Json;
using System.Text.RegularExpressions;
using Loop.Telegram.Tests;
using Loop.Testing;
using Microsoft.Playwright;
using static Microsoft.Playwright.Assertions;

/// <summary>A connector's owners and members on the Connectors page: an admin sets them on its roles form,
/// the daemon's refusal shows beside the field it names, and a viewer reads them without the form.</summary>
[Collection(DashboardCollection.Name)]
public sealed class ConnectorRolesPageTests(DashboardFixture fixture)
{
    [Fact]
    public async Task An_admin_sets_owners_and_members_on_the_Roles_form_sees_the_daemons_refusal_and_a_viewer_only_reads_them()
    {
        var name = "Roles bot " + Guid.NewGuid().ToString("N")[..6];
        var viewerName = "rita-" + Guid.NewGuid().ToString("N")[..8];
        string id;
        await using (var admin = await fixture.OpenAsync())
        {
            // Off: the bot need not reach Telegram for its roles to be set.
            using var added = await fixture.Daemon.Http.PostAsJsonAsync("/api/connectors",
                new { kind = "telegram", name, token = TelegramDouble.Token, enabled = false, allowed_users = new[] { "123456789", "@alice", "@robert" } });
            id = (string)(await LoopDaemon.ReadObjectAsync(added, HttpStatusCode.Created))["id"]!;

            await admin.RunAsync(async page =>
            {
                await Ui.GoToAsync(page, "connectors", "Connectors");
                var row = page.GetByTestId("connectors").GetByRole(AriaRole.Row).Filter(new() { HasText = name });
                await Expect(row.GetByTestId("connector-roles")).ToContainTextAsync("no owners");

                await row.GetByRole(AriaRole.Button, new() { Name = "Roles", Exact = true }).ClickAsync();
                var owners = Ui.Field(page, "Owners");
                await owners.FillAsync("*");
                await Ui.Button(page, "Save roles").ClickAsync();
                // The daemon's own words, beside the field they are about.
                await Expect(owners).ToHaveAttributeAsync("aria-invalid", "true");
                await Expect(owners).ToHaveAccessibleDescriptionAsync(new Regex(Regex.Escape("owners cannot be \"*\": name the people who may schedule")));
                await Screenshots.SaveAsync(page, "connector-roles-form");

                await owners.FillAsync("123456789, @alice");
                await Ui.Field(page, "Members").FillAsync("@robert");
                await Ui.Button(page, "Save roles").ClickAsync();
                var listed = row.GetByTestId("connector-roles");
                await Expect(listed).ToContainTextAsync("Owners: 123456789, @alice");
                await Expect(page.GetByRole(AriaRole.Form, new() { Name = $"Roles of {name}" })).ToBeHiddenAsync();

                await page.ReloadAsync();
                await Expect(listed).ToContainTextAsync("Owners: 123456789, @alice");
                await Expect(listed).ToContainTextAsync("Members: @robert");
                await Screenshots.SaveAsync(page, "connector-roles");
            });
            var stored = await fixture.Daemon.GetObjectAsync($"/api/connectors/{id}/roles");
            Assert.Equal(["123456789", "@alice"], stored["owners"]!.AsArray().Select(o => (string?)o));
            Assert.Equal(["@robert"], stored["members"]!.AsArray().Select(m => (string?)m));

            using var viewer = await fixture.Daemon.Http.PostAsJsonAsync("/api/users", new { username = viewerName, password = DashboardFixture.Password, role = "viewer" });
            await LoopDaemon.ReadObjectAsync(viewer, HttpStatusCode.Created);
        }

        await using var session = await fixture.OpenAsync(loggedIn: false);
        await session.RunAsync(async page =>
        {
            await page.GotoAsync("/#/connectors");
            await Ui.Field(page, "Username").FillAsync(viewerName);
            await Ui.Field(page, "Password").FillAsync(DashboardFixture.Password);
            await Ui.Button(page, "Log in").ClickAsync();

            await Expect(Ui.Heading(page, "Connectors")).ToBeVisibleAsync();
            var row = page.GetByTestId("connectors").GetByRole(AriaRole.Row).Filter(new() { HasText = name });
            await Expect(row.GetByTestId("connector-roles")).ToContainTextAsync("Owners: 123456789, @alice");
            await Expect(row.GetByRole(AriaRole.Button, new() { Name = "Roles", Exact = true })).ToHaveCountAsync(0);
        });

        // The fixture's daemon is shared: the connector goes again.
        using var removed = await fixture.Daemon.Http.DeleteAsync($"/api/connectors/{id}");
        Assert.Equal(HttpStatusCode.NoContent, removed.StatusCode);
    }
}
