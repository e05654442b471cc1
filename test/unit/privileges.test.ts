import { describe, expect, it } from 'vitest';
import { describePrivilegeCopy, isPrivilegeStatement, rolesNamed } from '../../migration/privileges.ts';

describe('owners and grants in a pg_dump', () => {
  it('tells privilege statements from the rest', () => {
    expect(isPrivilegeStatement('ALTER TABLE public.orders OWNER TO app_owner;')).toBe(true);
    expect(isPrivilegeStatement('-- Name: orders\n\nALTER TABLE public.orders OWNER TO "App Owner";')).toBe(true);
    expect(isPrivilegeStatement('GRANT SELECT ON TABLE public.orders TO reporting;')).toBe(true);
    expect(isPrivilegeStatement('REVOKE USAGE ON SCHEMA public FROM PUBLIC;')).toBe(true);
    expect(isPrivilegeStatement('ALTER DEFAULT PRIVILEGES FOR ROLE app_owner IN SCHEMA public GRANT SELECT ON TABLES TO reporting;')).toBe(true);
    expect(isPrivilegeStatement('ALTER TABLE ONLY public.orders ADD CONSTRAINT orders_pkey PRIMARY KEY (id);')).toBe(false);
    expect(isPrivilegeStatement("CREATE FUNCTION public.f() RETURNS void LANGUAGE sql AS $$ GRANT SELECT ON t TO x $$;")).toBe(false);
    expect(isPrivilegeStatement('ALTER TABLE public.t ALTER COLUMN owner SET DEFAULT 1;')).toBe(false);
  });

  it('names the roles they need, quoted or not, never PUBLIC', () => {
    expect(rolesNamed('ALTER TABLE public.orders OWNER TO app_owner;')).toEqual(['app_owner']);
    expect(rolesNamed('ALTER SCHEMA s OWNER TO "App ""Owner""";')).toEqual(['App "Owner"']);
    expect(rolesNamed('GRANT SELECT,INSERT ON TABLE public.orders TO reporting, "Ops" WITH GRANT OPTION;')).toEqual(['reporting', 'Ops']);
    expect(rolesNamed('GRANT ALL ON SCHEMA public TO PUBLIC;')).toEqual([]);
    expect(rolesNamed('REVOKE ALL ON TABLE public.orders FROM reporting CASCADE;')).toEqual(['reporting']);
    expect(rolesNamed('GRANT SELECT ON TABLE t TO reporting GRANTED BY admin;')).toEqual(['reporting', 'admin']);
    expect(rolesNamed('ALTER DEFAULT PRIVILEGES FOR ROLE app_owner IN SCHEMA public GRANT SELECT ON TABLES TO reporting;').sort()).toEqual(['app_owner', 'reporting']);
  });

  it('says which roles are missing and how to create them', () => {
    expect(describePrivilegeCopy({ kept: true, missingRoles: [] })).toBeUndefined();
    const said = describePrivilegeCopy({ kept: false, missingRoles: ['reporting'] })!;
    expect(said).toMatch(/NOT copied.*reporting.*--copy-roles/);
  });
});
